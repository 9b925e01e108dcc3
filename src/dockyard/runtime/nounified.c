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
 * The command runs from a read-only bind mount of its own file that is attached nowhere
 * (open_tree + mount_setattr + execveat). crun, like runc, guards against CVE-2019-5736 (a
 * container overwriting the runtime through /proc/<pid>/exe) by copying itself into a sealed
 * memfd and executing that, on every call, unless its binary is on a read-only mount: this
 * gives the same protection without the copy and the second exec (1.3 ms per call here).
 * Where the kernel lacks those calls, or for a script, it is executed as it is.
 *
 * dockyard's dev/setup builds it (static: one exec, no dynamic loader) and installs it in
 * <prefix>/libexec/dockyard. Exit codes: 125 when the namespace cannot be set up, 127 when
 * the command cannot be executed; otherwise the command's own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

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
	int tree = (int)syscall(SYS_open_tree, AT_FDCWD, argv[1], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree >= 0) {
		struct mount_attr readonly = { .attr_set = MOUNT_ATTR_RDONLY };
		if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &readonly, sizeof readonly) == 0)
			syscall(SYS_execveat, tree, "", argv + 1, environ, AT_EMPTY_PATH);
		close(tree); /* not done (an old kernel, a script): run it as it is */
	}
	execv(argv[1], argv + 1);
	return fail(argv[1], 127);
}
