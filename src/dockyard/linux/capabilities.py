"""Which capabilities this host can grant: the daemon's bounding set.

A process can never hold a capability outside its parent's bounding set, so `--privileged`
means "all that the bounding set holds" (ours lacks CAP_SYS_RESOURCE; asking runc for it
fails with `unable to apply caps: operation not permitted`).
"""

from __future__ import annotations

# Bit numbers from linux/capability.h.
CAPABILITY_BITS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON",
    "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip


def capabilities_in_mask(mask: int) -> frozenset[str]:
    """The named capabilities whose bits are set (bits the table does not know are ignored)."""
    return frozenset(name for bit, name in enumerate(CAPABILITY_BITS) if mask >> bit & 1)


def parse_bounding_set(status_text: str) -> frozenset[str]:
    """The CapBnd line of /proc/<pid>/status; empty when there is none."""
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        if key == "CapBnd":
            try:
                return capabilities_in_mask(int(value.strip(), 16))
            except ValueError:
                return frozenset()
    return frozenset()


def bounding_set() -> frozenset[str]:
    """The daemon's own bounding set (a small /proc read)."""
    with open("/proc/self/status", encoding="ascii", errors="replace") as f:
        return parse_bounding_set(f.read())
