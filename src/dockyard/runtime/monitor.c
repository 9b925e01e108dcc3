/*
 * dockyard-monitor: the per-container monitor, a smaller stand-in for conmon.
 *
 *   dockyard-monitor --id ID --runtime PATH [--runtime-arg ARG]... --dir DIR
 *                    --pid-file FILE --monitor-pid-file FILE --exit-dir DIR
 *                    (--bundle DIR | --exec-process FILE --exec-id EXEC_ID)
 *                    [--persist-dir DIR] [--log FILE] [--log-size-max BYTES]
 *                    [--tty] [--stdin] [--leave-stdin-open]
 *   dockyard-monitor --version
 *
 * It detaches from the daemon (fork, setsid; the first process writes the second's pid to
 * --monitor-pid-file and exits), becomes a child subreaper, and runs
 *   <runtime> <runtime-args> create --bundle B --pid-file P [--console-socket S] ID
 * or, with --exec-process,
 *   <runtime> <runtime-args> exec --pid-file P --process F --detach [--console-socket S] ID
 * with the container's stdio on pipes it holds, or on the pty whose master the runtime sends
 * over the console socket. While the container runs it writes its output to the log (conmon's
 * k8s-file format: `<time> <stream> <F|P> <text>`, one line per line, the same time for every
 * line of one read; past --log-size-max it starts the next file as conmon does: ctr.log.tmp
 * renamed over ctr.log), serves DIR/attach (SOCK_SEQPACKET: each packet it sends is one byte
 * naming the stream, 2 stdout or 3 stderr, then the data; each packet it receives is stdin;
 * a client's end of stdin closes the container's, unless --leave-stdin-open), and reads DIR/ctl
 * ("1 HEIGHT WIDTH\n": resize the pty; "2 0 0\n": start a new log file). When the container's
 * process has exited it reads what is left of the output, notes an OOM kill (PERSIST/oom),
 * closes the attach connections, writes the exit code (128+signal when killed) to
 * EXIT_DIR/ID through a temporary file and a rename, and exits.
 *
 * The daemon talks to it as to conmon, through pipes named in the environment:
 *   _OCI_SYNCPIPE    it writes {"data": PID}\n once the runtime made the process, or
 *                    {"data": -1, "message": "<the runtime's stderr>"}\n when it failed;
 *   _OCI_STARTPIPE   (exec) one byte is read before the fork; the runtime is started only
 *                    after a second byte (the daemon's go: its attach connection is made);
 *   _OCI_ATTACHPIPE  (exec) it writes {"data": 0}\n once DIR/attach and DIR/ctl exist.
 *
 * Static, single-threaded, one poll loop, no allocation: dev/setup builds it against musl
 * where musl-gcc is installed (~0.1 MiB resident), else against glibc (~0.46 MiB: glibc's
 * static start-up and the kernel's fault-around map more of the file). Exit codes of the
 * first process: 0, or 125 for bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h> /* rename(): nothing of stdio's streams is used */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MONITOR_VERSION "1.0" /* `--version`, as `docker version` lists it; the protocol's */
#define CHUNK 8192	    /* one read of the container's output */
#define STDIN_CHUNK 32768   /* one packet of stdin from a client */
#define MAX_CLIENTS 64
#define MAX_ARGS 64
#define LOG_BUF 16384
#define TS_LEN 43	    /* "2026-11-27T19:52:41.652377680+00:00 stdout " */
#define CGROUP2_MAGIC 0x63677270
#define DRAIN_MAX (64 << 20) /* what is read after the exit, at most (a writer outside the pid namespace) */

static struct {
	const char *id, *exec_id, *runtime, *bundle, *dir, *pid_file, *monitor_pid_file;
	const char *exit_dir, *persist_dir, *log_path, *exec_process;
	const char *runtime_args[MAX_ARGS];
	int n_runtime_args;
	long long log_size_max;
	int tty, stdin_open, leave_stdin_open;
} opt;

static int sync_fd = -1;
static int in_fd = -1;	/* the container's stdin: a pipe's write end, or the pty master */
static int out_fd = -1; /* its stdout: a pipe's read end, or the pty master */
static int err_fd = -1; /* its stderr (and the runtime's) */
static int log_fd = -1;
static long long log_written;
static char console_dir[32], console_path[48];

/* ---- small output helpers (no stdio: it would bring its buffers and locale in) ---- */

static size_t fmt_long(char *out, long long v)
{
	char tmp[24];
	size_t n = 0, len = 0;
	unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		out[len++] = '-';
	while (n)
		out[len++] = tmp[--n];
	out[len] = '\0';
	return len;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A JSON line on one of the daemon's pipes: {"data": N} or {"data": N, "message": "..."}. */
static void report(int *fd, long long data, const char *message, size_t len)
{
	static char line[2 * CHUNK];
	size_t n = 0;
	if (*fd < 0)
		return;
	memcpy(line, "{\"data\": ", 9);
	n = 9 + fmt_long(line + 9, data);
	if (message != NULL && len > 0) {
		memcpy(line + n, ", \"message\": \"", 14);
		n += 14;
		for (size_t i = 0; i < len && n < sizeof line - 16; i++) {
			unsigned char c = (unsigned char)message[i];
			if (c == '"' || c == '\\') {
				line[n++] = '\\';
				line[n++] = (char)c;
			} else if (c == '\n') {
				line[n++] = '\\';
				line[n++] = 'n';
			} else if (c < 0x20 || c == 0x7f) {
				static const char hex[] = "0123456789abcdef";
				memcpy(line + n, "\\u00", 4);
				line[n + 4] = hex[c >> 4];
				line[n + 5] = hex[c & 15];
				n += 6;
			} else {
				line[n++] = (char)c; /* UTF-8 passes as it is */
			}
		}
		line[n++] = '"';
	}
	line[n++] = '}';
	line[n++] = '\n';
	if (write_all(*fd, line, n) < 0 || data != 0) {
		close(*fd); /* the pid (or the failure) is the last word on this pipe */
		*fd = -1;
	}
}

/* Give up: tell the daemon why (while it listens), then exit. */
static void fail(const char *what)
{
	char message[512];
	size_t n = strlen(what);
	const char *reason = strerror(errno);
	if (n > 256)
		n = 256;
	memcpy(message, what, n);
	if (errno != 0) {
		size_t r = strlen(reason);
		if (r > 200)
			r = 200;
		memcpy(message + n, ": ", 2);
		memcpy(message + n + 2, reason, r);
		n += 2 + r;
	}
	message[n] = '\n';
	(void)!write(STDERR_FILENO, "dockyard-monitor: ", 18);
	(void)!write(STDERR_FILENO, message, n + 1);
	report(&sync_fd, -1, message, n);
	if (console_path[0]) {
		unlink(console_path);
		rmdir(console_dir);
	}
	_exit(1);
}

static void usage(const char *why)
{
	(void)!write(STDERR_FILENO, "dockyard-monitor: ", 18);
	(void)!write(STDERR_FILENO, why, strlen(why));
	(void)!write(STDERR_FILENO, "\n", 1);
	_exit(125);
}

static void parse(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		static const char version[] = "dockyard-monitor version " MONITOR_VERSION "\n";
		_exit(write_all(STDOUT_FILENO, version, sizeof version - 1) == 0 ? 0 : 1);
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--tty")) {
			opt.tty = 1;
			continue;
		}
		if (!strcmp(a, "--stdin")) {
			opt.stdin_open = 1;
			continue;
		}
		if (!strcmp(a, "--leave-stdin-open")) {
			opt.leave_stdin_open = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage("an option lacks its value");
		const char *v = argv[++i];
		if (!strcmp(a, "--id"))
			opt.id = v;
		else if (!strcmp(a, "--exec-id"))
			opt.exec_id = v;
		else if (!strcmp(a, "--runtime"))
			opt.runtime = v;
		else if (!strcmp(a, "--runtime-arg")) {
			if (opt.n_runtime_args >= MAX_ARGS)
				usage("too many --runtime-arg");
			opt.runtime_args[opt.n_runtime_args++] = v;
		} else if (!strcmp(a, "--bundle"))
			opt.bundle = v;
		else if (!strcmp(a, "--dir"))
			opt.dir = v;
		else if (!strcmp(a, "--pid-file"))
			opt.pid_file = v;
		else if (!strcmp(a, "--monitor-pid-file"))
			opt.monitor_pid_file = v;
		else if (!strcmp(a, "--exit-dir"))
			opt.exit_dir = v;
		else if (!strcmp(a, "--persist-dir"))
			opt.persist_dir = v;
		else if (!strcmp(a, "--log"))
			opt.log_path = v;
		else if (!strcmp(a, "--log-size-max"))
			opt.log_size_max = atoll(v);
		else if (!strcmp(a, "--exec-process"))
			opt.exec_process = v;
		else
			usage("unknown option");
	}
	if (!opt.id || !opt.runtime || !opt.dir || !opt.pid_file || !opt.monitor_pid_file || !opt.exit_dir)
		usage("--id, --runtime, --dir, --pid-file, --monitor-pid-file and --exit-dir are required");
	if (!opt.bundle == !opt.exec_process)
		usage("one of --bundle and --exec-process is required");
	if (strchr(opt.id, '/') || !opt.id[0])
		usage("a bad --id");
}

static int env_fd(const char *name)
{
	const char *s = getenv(name);
	char *end;
	if (s == NULL)
		return -1;
	long fd = strtol(s, &end, 10);
	if (*end != '\0' || fd < 0 || fd > 65535)
		usage("a bad pipe number in the environment");
	if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0)
		return -1;
	return (int)fd;
}

/* path's content replaced in one rename: a reader sees all of it or none. */
static int atomic_write(const char *path, const char *data, size_t n)
{
	char tmp[4096];
	size_t len = strlen(path);
	if (len + 5 > sizeof tmp)
		return -1;
	memcpy(tmp, path, len);
	memcpy(tmp + len, ".tmp", 5);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	int bad = write_all(fd, data, n);
	close(fd);
	if (bad || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int join(char *out, size_t size, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la + 1 + lb + 1 > size)
		return -1;
	memcpy(out, a, la);
	out[la] = '/';
	memcpy(out + la + 1, b, lb + 1);
	return 0;
}

static void set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* ---- the log: conmon's k8s-file ---- */

static void timestamp(char *out, const char *stream)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long days = ts.tv_sec / 86400, secs = ts.tv_sec % 86400;
	/* civil date from days since 1970-01-01 (proleptic Gregorian, eras of 400 years) */
	long long z = days + 719468, era = z / 146097;
	long long doe = z - era * 146097;
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	long long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
	long long year = yoe + era * 400 + (month <= 2);
	long long fields[] = {year, month, day, secs / 3600, secs / 60 % 60, secs % 60};
	static const char sep[] = "--T::.";
	static const int width[] = {4, 2, 2, 2, 2, 2};
	char *p = out;
	for (int i = 0; i < 6; i++) {
		for (int w = width[i] - 1; w >= 0; w--, fields[i] /= 10)
			p[w] = (char)('0' + fields[i] % 10);
		p += width[i];
		*p++ = sep[i];
	}
	long ns = ts.tv_nsec;
	for (int w = 8; w >= 0; w--, ns /= 10)
		p[w] = (char)('0' + ns % 10);
	memcpy(p + 9, "+00:00 ", 7);
	memcpy(p + 16, stream, 6);
	p[22] = ' ';
}

static char logbuf[LOG_BUF];
static size_t log_len;

static void log_flush(void)
{
	if (log_len > 0 && log_fd >= 0)
		(void)write_all(log_fd, logbuf, log_len);
	log_len = 0;
}

static void log_put(const char *p, size_t n)
{
	if (log_len + n > sizeof logbuf) {
		log_flush();
		if (n > sizeof logbuf) {
			(void)write_all(log_fd, p, n);
			return;
		}
	}
	memcpy(logbuf + log_len, p, n);
	log_len += n;
}

/* A new file: ctr.log.tmp renamed over ctr.log, so that a reader holding the old one by a
 * link or an fd reads it to its end (runtime/spool.py). */
static void log_rotate(void)
{
	char tmp[4096];
	size_t len = strlen(opt.log_path);
	if (log_fd < 0 || len + 5 > sizeof tmp)
		return;
	log_flush();
	memcpy(tmp, opt.log_path, len);
	memcpy(tmp + len, ".tmp", 5);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return; /* keep writing the old file rather than lose lines */
	if (rename(tmp, opt.log_path) < 0) {
		close(fd);
		unlink(tmp);
		return;
	}
	close(log_fd);
	log_fd = fd;
	log_written = 0;
}

static void log_write(int stream, const char *data, size_t n)
{
	char ts[TS_LEN + 1];
	if (log_fd < 0)
		return;
	timestamp(ts, stream == 2 ? "stdout" : "stderr");
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t line = nl ? (size_t)(nl - data) + 1 : n;
		long long cost = TS_LEN + 2 + (long long)line + (nl ? 0 : 1);
		if (opt.log_size_max > 0 && log_written > 0 && log_written + cost > opt.log_size_max)
			log_rotate();
		log_put(ts, TS_LEN);
		log_put(nl ? "F " : "P ", 2);
		log_put(data, line);
		if (!nl)
			log_put("\n", 1);
		log_written += cost;
		data += line;
		n -= line;
	}
	log_flush();
}

/* ---- attach clients ---- */

struct client {
	int fd;
	int reading; /* 0 once its stdin ended */
};
static struct client clients[MAX_CLIENTS];
static int n_clients;
static char stdin_buf[STDIN_CHUNK];
static size_t stdin_off, stdin_len; /* stdin read from a client, not yet taken by the container */

static void drop_client(int i)
{
	close(clients[i].fd);
	clients[i] = clients[--n_clients];
}

/* Every client waiting in the backlog: before any output is sent, so that a client that
 * connected before the process started (an exec's) misses none. */
static void accept_clients(int listen_fd)
{
	while (n_clients < MAX_CLIENTS) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return;
		clients[n_clients++] = (struct client){.fd = fd, .reading = 1};
	}
}

static void close_stdin(void)
{
	if (in_fd < 0)
		return;
	if (in_fd != out_fd)
		close(in_fd); /* a pty's master stays: it is the output too */
	in_fd = -1;
	stdin_len = stdin_off = 0;
}

static void emit(int stream, char *buf, size_t n)
{
	/* buf[0] is free for the stream byte; the data follow */
	log_write(stream, buf + 1, n);
	buf[0] = (char)stream;
	for (int i = 0; i < n_clients; i++) {
		/* Blocking, as conmon's: a client that reads slowly slows the container, none is
		 * skipped. The client's own end makes the send fail. */
		if (send(clients[i].fd, buf, n + 1, MSG_NOSIGNAL) < 0 && errno != EINTR) {
			drop_client(i);
			i--;
		}
	}
}

/* One read of a stream: 1 data, 0 nothing now, -1 its end (pty: no writer at the moment). */
static int pump(int fd, int stream)
{
	static char buf[CHUNK + 1];
	ssize_t n = read(fd, buf + 1, CHUNK);
	if (n > 0) {
		emit(stream, buf, (size_t)n);
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return -1;
}

static void flush_stdin(void)
{
	while (stdin_len > 0 && in_fd >= 0) {
		ssize_t w = write(in_fd, stdin_buf + stdin_off, stdin_len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				close_stdin(); /* the container closed its stdin */
			return;
		}
		stdin_off += (size_t)w;
		stdin_len -= (size_t)w;
	}
	if (in_fd < 0)
		stdin_len = 0;
	if (stdin_len == 0)
		stdin_off = 0;
}

static void read_client(int i)
{
	ssize_t n = recv(clients[i].fd, stdin_buf, sizeof stdin_buf, MSG_DONTWAIT);
	if (n > 0) {
		if (in_fd >= 0) {
			stdin_off = 0;
			stdin_len = (size_t)n;
			flush_stdin();
		}
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		drop_client(i);
		return;
	}
	clients[i].reading = 0; /* the client's stdin ended; it still reads the output */
	if (opt.stdin_open && !opt.leave_stdin_open)
		close_stdin();
}

/* ---- processes ---- */

static pid_t runtime_pid = -1, container_pid = -1;
static int runtime_status = -1, container_status = -1;
static int runtime_done, container_done;
static struct {
	pid_t pid;
	int status;
} early[16]; /* children reaped before the container's pid was known */
static int n_early;

static void reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		if (pid == runtime_pid) {
			runtime_status = status;
			runtime_done = 1;
		} else if (pid == container_pid) {
			container_status = status;
			container_done = 1;
		} else if (container_pid < 0) {
			early[n_early % 16].pid = pid;
			early[n_early % 16].status = status;
			n_early++;
		}
	}
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

static int handle_signals(int sfd)
{
	struct signalfd_siginfo si;
	int got_child = 0;
	while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGCHLD) {
			got_child = 1;
		} else {
			/* SIGTERM, SIGINT, SIGQUIT: for the container, as conmon forwards them */
			pid_t target = container_pid > 0 ? container_pid : runtime_pid;
			if (target > 0)
				kill(target, (int)si.ssi_signo);
		}
	}
	if (got_child)
		reap();
	return got_child;
}

static long long read_pid_file(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	long long v = atoll(buf);
	return v > 0 ? v : -1;
}

/* ---- OOM: the cgroup's oom_kill count at the start and at the end ---- */

static int oom_fd = -1;
static long long oom_base;

static long long oom_kills(void)
{
	char buf[1024];
	ssize_t n = pread(oom_fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (char *line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
		if (!strncmp(line, "oom_kill ", 9))
			return atoll(line + 9);
	return -1;
}

static void watch_oom(pid_t pid)
{
	char path[4096], cgroups[4096], file[4200];
	struct statfs fs;
	int v2 = statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_MAGIC;
	fmt_long(path, pid);
	memcpy(cgroups, "/proc/", 6);
	strcpy(cgroups + 6, path);
	strcat(cgroups, "/cgroup");
	int fd = open(cgroups, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, cgroups, sizeof cgroups - 1);
	close(fd);
	if (n <= 0)
		return;
	cgroups[n] = '\0';
	/* lines "ID:CONTROLLERS:PATH"; v2's is "0::PATH", v1's memory one names "memory" */
	for (char *line = cgroups; line && *line;) {
		char *end = strchr(line, '\n');
		if (end)
			*end = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2) {
			*c2 = '\0';
			const char *controllers = c1 + 1, *cg = c2 + 1;
			int match = 0;
			if (v2)
				match = line[0] == '0' && c1 == line + 1 && *controllers == '\0';
			else
				for (const char *p = controllers; *p;) {
					size_t len = strcspn(p, ",");
					if (len == 6 && !strncmp(p, "memory", 6))
						match = 1;
					p += len + (p[len] == ',');
				}
			if (match) {
				size_t lc = strlen(cg);
				const char *base = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
				const char *name = v2 ? "/memory.events" : "/memory.oom_control";
				if (strlen(base) + lc + strlen(name) + 1 > sizeof file)
					return;
				strcpy(file, base);
				strcat(file, cg);
				strcat(file, name);
				oom_fd = open(file, O_RDONLY | O_CLOEXEC);
				if (oom_fd >= 0 && (oom_base = oom_kills()) < 0) {
					close(oom_fd);
					oom_fd = -1;
				}
				return;
			}
		}
		line = end ? end + 1 : NULL;
	}
}

static void note_oom(void)
{
	char path[4096];
	if (oom_fd < 0 || !opt.persist_dir || oom_kills() <= oom_base)
		return;
	if (join(path, sizeof path, opt.persist_dir, "oom") == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
}

/* ---- the terminal ---- */

static int console_socket(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	memcpy(console_dir, "/tmp/dockyard-console.XXXXXX", 29);
	if (mkdtemp(console_dir) == NULL)
		fail("cannot make the console socket's directory");
	strcpy(console_path, console_dir);
	strcat(console_path, "/sock");
	strcpy(addr.sun_path, console_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 1) < 0)
		fail("cannot listen on the console socket");
	return fd;
}

/* The pty master the runtime sends (SCM_RIGHTS); -1 when none came. */
static int receive_console(int listen_fd)
{
	int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		return -1;
	char name[256];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = name, .iov_len = sizeof name};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
	int master = -1;
	ssize_t n;
	do
		n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&master, CMSG_DATA(cm), sizeof master);
	close(conn);
	if (master < 0)
		return -1;
	struct termios t;
	if (tcgetattr(master, &t) == 0) {
		t.c_oflag |= ONLCR; /* "\n" -> "\r\n", as docker's ttys show output */
		tcsetattr(master, TCSANOW, &t);
	}
	set_nonblocking(master);
	return master;
}

static void resize(int height, int width)
{
	if (!opt.tty || out_fd < 0)
		return;
	struct winsize ws = {.ws_row = (unsigned short)height, .ws_col = (unsigned short)width};
	ioctl(out_fd, TIOCSWINSZ, &ws);
}

/* "TYPE HEIGHT WIDTH\n" lines on the ctl fifo */
static void read_ctl(int fd)
{
	static char buf[256];
	static size_t len;
	ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
	if (n <= 0)
		return;
	len += (size_t)n;
	buf[len] = '\0';
	char *line = buf, *nl;
	while ((nl = memchr(line, '\n', len - (size_t)(line - buf))) != NULL) {
		*nl = '\0';
		char *end;
		long type = strtol(line, &end, 10);
		long height = strtol(end, &end, 10);
		long width = strtol(end, &end, 10);
		if (type == 1 && height >= 0 && width >= 0 && height <= 65535 && width <= 65535)
			resize((int)height, (int)width);
		else if (type == 2)
			log_rotate();
		line = nl + 1;
	}
	len -= (size_t)(line - buf);
	memmove(buf, line, len);
	if (len == sizeof buf - 1)
		len = 0; /* no newline in a whole buffer: not a message */
}

/* ---- start-up ---- */

static void exec_runtime(int work_in, int work_out, int work_err, int null_r, int null_w, int start_fd, const sigset_t *mask)
{
	const char *argv[MAX_ARGS + 16];
	int n = 0;
	argv[n++] = opt.runtime;
	for (int i = 0; i < opt.n_runtime_args; i++)
		argv[n++] = opt.runtime_args[i];
	if (opt.exec_process) {
		argv[n++] = "exec";
		argv[n++] = "--pid-file";
		argv[n++] = opt.pid_file;
		argv[n++] = "--process";
		argv[n++] = opt.exec_process;
		argv[n++] = "--detach";
	} else {
		argv[n++] = "create";
		argv[n++] = "--bundle";
		argv[n++] = opt.bundle;
		argv[n++] = "--pid-file";
		argv[n++] = opt.pid_file;
	}
	if (console_path[0]) {
		argv[n++] = "--console-socket";
		argv[n++] = console_path;
	}
	argv[n++] = opt.id;
	argv[n] = NULL;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigprocmask(SIG_SETMASK, mask, NULL);
	signal(SIGPIPE, SIG_DFL);
	int fds[3] = {work_in >= 0 ? work_in : null_r, work_out >= 0 ? work_out : null_w, work_err};
	for (int i = 0; i < 3; i++) {
		if (dup2(fds[i], i) < 0)
			_exit(127);
		/* A container user other than root opens /dev/stdout (/proc/self/fd/1): the pipe must let it. */
		if (fds[i] != null_r && fds[i] != null_w)
			fchmod(i, 0777);
	}
	if (start_fd >= 0) {
		/* An exec waits for the daemon's go: its attach connection is made. EOF: no go. */
		char go;
		ssize_t r;
		do
			r = read(start_fd, &go, 1);
		while (r < 0 && errno == EINTR);
		if (r != 1)
			_exit(127);
	}
	execv(opt.runtime, (char *const *)argv);
	_exit(127);
}

static int attach_socket(int dir_fd)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char dir[24];
	/* sun_path holds 108 bytes: reach a long directory through its fd */
	fmt_long(dir, dir_fd);
	strcpy(addr.sun_path, "/proc/self/fd/");
	strcat(addr.sun_path, dir);
	strcat(addr.sun_path, "/attach");
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("cannot make the attach socket");
	if (unlinkat(dir_fd, "attach", 0) < 0 && errno != ENOENT)
		fail("cannot remove an old attach socket");
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || fchmodat(dir_fd, "attach", 0700, 0) < 0 || listen(fd, 16) < 0)
		fail("cannot listen on the attach socket");
	return fd;
}

static int ctl_fifo(int dir_fd, int *keep_writer)
{
	unlinkat(dir_fd, "ctl", 0);
	if (mkfifoat(dir_fd, "ctl", 0660) < 0)
		fail("cannot make the ctl fifo");
	int fd = openat(dir_fd, "ctl", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	/* A writer of our own: the fifo never reports the end when the daemon's writer closes. */
	*keep_writer = fd < 0 ? -1 : openat(dir_fd, "ctl", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || *keep_writer < 0)
		fail("cannot open the ctl fifo");
	return fd;
}

static void write_exit(int code)
{
	char path[4096], text[24];
	size_t n = fmt_long(text, code);
	if (join(path, sizeof path, opt.exit_dir, opt.id) == 0)
		atomic_write(path, text, n);
}

static void wait_for_runtime(int sfd, int console_fd)
{
	while (!runtime_done) {
		int want_console = console_fd >= 0 && out_fd < 0;
		struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = console_fd, .events = POLLIN}};
		if (poll(p, want_console ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			fail("poll");
		}
		if (want_console && (p[1].revents & POLLIN))
			out_fd = receive_console(console_fd);
		if (p[0].revents)
			handle_signals(sfd);
	}
	if (console_fd >= 0 && out_fd < 0)
		out_fd = receive_console(console_fd); /* sent just before the runtime exited */
}

int main(int argc, char **argv)
{
	parse(argc, argv);
	umask(022);
	signal(SIGPIPE, SIG_IGN);
	sync_fd = env_fd("_OCI_SYNCPIPE");
	int start_fd = env_fd("_OCI_STARTPIPE");
	int attach_pipe = env_fd("_OCI_ATTACHPIPE");
	if (start_fd >= 0) {
		char c;
		while (read(start_fd, &c, 1) < 0 && errno == EINTR)
			;
	}
	int null_r = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int null_w = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null_r < 0 || null_w < 0)
		fail("cannot open /dev/null");

	pid_t child = fork();
	if (child < 0)
		fail("fork");
	if (child > 0) {
		char text[24];
		size_t n = fmt_long(text, child);
		_exit(atomic_write(opt.monitor_pid_file, text, n) == 0 ? 0 : 1);
	}

	/* The monitor: its own session, nothing of the daemon's stdio (it waits for their end). */
	dup2(null_r, STDIN_FILENO);
	dup2(null_w, STDOUT_FILENO);
	dup2(null_w, STDERR_FILENO);
	setsid();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		fail("cannot become a subreaper");

	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, &old);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		fail("signalfd");

	int work_in = -1, work_out = -1, work_err, p[2], console_fd = -1;
	if (opt.tty) {
		console_fd = console_socket();
	} else {
		if (opt.stdin_open) {
			if (pipe2(p, O_CLOEXEC) < 0)
				fail("pipe");
			in_fd = p[1];
			work_in = p[0];
			set_nonblocking(in_fd);
		}
		if (pipe2(p, O_CLOEXEC) < 0)
			fail("pipe");
		out_fd = p[0];
		work_out = p[1];
	}
	/* stderr is a pipe also with a tty: the runtime's own error comes through it */
	if (pipe2(p, O_CLOEXEC) < 0)
		fail("pipe");
	err_fd = p[0];
	work_err = p[1];

	if (opt.log_path) {
		log_fd = open(opt.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		struct stat st;
		if (log_fd < 0)
			fail("cannot open the log");
		log_written = fstat(log_fd, &st) == 0 ? st.st_size : 0;
	}
	int dir_fd = open(opt.dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		fail("cannot open the monitor's directory");
	int listen_fd = attach_socket(dir_fd);
	int ctl_writer;
	int ctl_fd = ctl_fifo(dir_fd, &ctl_writer);
	report(&attach_pipe, 0, NULL, 0);
	if (attach_pipe >= 0) {
		close(attach_pipe);
		attach_pipe = -1;
	}

	runtime_pid = fork();
	if (runtime_pid < 0)
		fail("fork");
	if (runtime_pid == 0)
		exec_runtime(work_in, work_out, work_err, null_r, null_w, start_fd, &old);
	if (work_in >= 0)
		close(work_in);
	if (work_out >= 0)
		close(work_out);
	close(work_err);
	if (start_fd >= 0)
		close(start_fd);

	wait_for_runtime(sfd, console_fd);
	if (console_fd >= 0) {
		close(console_fd);
		unlink(console_path);
		rmdir(console_dir);
		console_path[0] = '\0';
	}
	long long pid = read_pid_file(opt.pid_file);
	int failed = pid <= 0 || (!opt.exec_process && !(WIFEXITED(runtime_status) && WEXITSTATUS(runtime_status) == 0));
	if (failed) {
		static char why[CHUNK];
		set_nonblocking(err_fd);
		ssize_t n = read(err_fd, why, sizeof why);
		errno = 0;
		if (n > 0) {
			report(&sync_fd, -1, why, (size_t)n);
			_exit(1);
		}
		fail(pid <= 0 ? "the runtime did not write the pid file" : "the runtime failed");
	}
	if (opt.tty && out_fd < 0) {
		errno = 0;
		fail("the runtime did not send the terminal");
	}
	if (opt.tty && opt.stdin_open)
		in_fd = out_fd; /* the pty master is the input too */
	container_pid = (pid_t)pid;
	for (int i = 0; i < n_early && i < 16; i++)
		if (early[i].pid == container_pid) {
			container_status = early[i].status;
			container_done = 1;
		}
	if (!opt.exec_process)
		watch_oom(container_pid);
	report(&sync_fd, pid, NULL, 0);

	/* Is it our child (reparented to us)? If not, its end is seen through a pidfd. */
	int pidfd = -1;
	siginfo_t si;
	if (!container_done && waitid(P_PID, (id_t)container_pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD)
		pidfd = (int)syscall(SYS_pidfd_open, container_pid, 0);

	int tty_paused = 0;
	accept_clients(listen_fd);
	while (!container_done) {
		struct pollfd pf[8 + MAX_CLIENTS];
		int n = 0, i_out = -1, i_err = -1, i_listen = -1, i_ctl, i_in = -1, i_pid = -1;
		pf[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		i_ctl = n;
		pf[n++] = (struct pollfd){.fd = ctl_fd, .events = POLLIN};
		if (out_fd >= 0 && !tty_paused) {
			i_out = n;
			pf[n++] = (struct pollfd){.fd = out_fd, .events = POLLIN};
		}
		if (err_fd >= 0) {
			i_err = n;
			pf[n++] = (struct pollfd){.fd = err_fd, .events = POLLIN};
		}
		if (n_clients < MAX_CLIENTS) {
			i_listen = n;
			pf[n++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		}
		if (stdin_len > 0 && in_fd >= 0) {
			i_in = n;
			pf[n++] = (struct pollfd){.fd = in_fd, .events = POLLOUT};
		}
		if (pidfd >= 0) {
			i_pid = n;
			pf[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		}
		int first_client = n, polled_clients = n_clients;
		for (int i = 0; i < n_clients; i++)
			pf[n++] = (struct pollfd){.fd = clients[i].fd, .events = clients[i].reading && stdin_len == 0 ? POLLIN : 0};

		int r = poll(pf, (nfds_t)n, tty_paused ? 100 : -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail("poll");
		}
		tty_paused = 0;
		if (i_listen >= 0 && (pf[i_listen].revents & POLLIN))
			accept_clients(listen_fd);
		if (i_out >= 0 && pf[i_out].revents) {
			int got = pump(out_fd, 2);
			if (got < 0 || (got == 0 && (pf[i_out].revents & (POLLHUP | POLLERR)))) {
				if (opt.tty) {
					tty_paused = 1; /* no slave open now: look again in a while, not in a loop */
				} else {
					close(out_fd);
					out_fd = -1;
				}
			}
		}
		if (i_err >= 0 && pf[i_err].revents && pump(err_fd, 3) < 0) {
			close(err_fd);
			err_fd = -1;
		}
		if (i_in >= 0 && pf[i_in].revents)
			flush_stdin();
		if (pf[i_ctl].revents & POLLIN)
			read_ctl(ctl_fd);
		/* clients from the back: drop_client moves the last one into a freed place */
		for (int i = polled_clients - 1; i >= 0; i--) {
			short ev = pf[first_client + i].revents;
			if (i >= n_clients || clients[i].fd != pf[first_client + i].fd)
				continue; /* dropped (or moved) by a failed send above: next round */
			if (ev & POLLIN) {
				if (stdin_len == 0) /* one chunk held at a time: another client's waits a round */
					read_client(i);
			} else if (ev & (POLLHUP | POLLERR | POLLNVAL))
				drop_client(i);
		}
		if (i_pid >= 0 && pf[i_pid].revents) {
			container_done = 1;
			container_status = 255 << 8; /* not our child: its status is not ours to know */
		}
		if (pf[0].revents)
			handle_signals(sfd);
	}

	/* What the container wrote before its end. */
	accept_clients(listen_fd);
	long long drained = 0;
	int fds[2] = {out_fd, err_fd};
	for (int i = 0; i < 2; i++) {
		if (fds[i] < 0)
			continue;
		set_nonblocking(fds[i]);
		while (drained < DRAIN_MAX && pump(fds[i], i == 0 ? 2 : 3) > 0)
			drained += CHUNK;
	}
	log_flush();
	note_oom();
	for (int i = n_clients - 1; i >= 0; i--)
		drop_client(i);
	close(listen_fd);
	write_exit(exit_code(container_status));
	return 0;
}
