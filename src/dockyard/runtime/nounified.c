/*
 * dockyard-nounified: run a command in a mount namespace of its own where the cgroup v2
 * "unified" mount of a hybrid host (/sys/fs/cgroup/unified) is absent.
 *
 *   dockyard-nounified /usr/bin/crun --root /run/dockyard/runtime/crun create ...
 *
 * crun 1.8 refuses a hybrid host whose v2 hierarchy holds a controller ("cgroups in hybrid
 * mode not supported"); it detects the mode by statfs() of that path. Without the mount it
 * sees a cgroup v1 host and applies v1 limits under the same cgroup paths runc uses. Every
 * other mount stays as it is, in the host's peer groups: only the unified mount is made
 * private before it is detached, so the unmount does not propagate back to the host, and
 * mount propagation into containers is what the runtime would get on the host.
 *
 * dockyard's dev/setup builds it (static: one exec, no dynamic loader) and installs it in
 * <prefix>/libexec/dockyard. Exit codes: 125 when the namespace cannot be set up, 127 when
 * the command cannot be executed; otherwise the command's own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static const char unified[] = "/sys/fs/cgroup/unified";

static int fail(const char *what, int code)
{
	fprintf(stderr, "dockyard-nounified: %s: %s\n", what, strerror(errno));
	return code;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] != '/') {
		fprintf(stderr, "usage: dockyard-nounified /absolute/path/to/command [args...]\n");
		return 125;
	}
	if (unshare(CLONE_NEWNS) < 0)
		return fail("unshare(CLONE_NEWNS)", 125);
	/* EINVAL: not a mount point here (no unified mount): nothing to hide. */
	if (mount(NULL, unified, NULL, MS_PRIVATE, NULL) < 0) {
		if (errno != EINVAL && errno != ENOENT)
			return fail("make the unified mount private", 125);
	} else if (umount2(unified, MNT_DETACH) < 0) {
		return fail("unmount the unified mount", 125);
	}
	execv(argv[1], argv + 1);
	return fail(argv[1], 127);
}
