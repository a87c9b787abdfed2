/*
 * s6-init-helper: the few things s6-init's execline scripts cannot do themselves
 * (mounts, an ioctl, writing files, signalling every process, powering off).
 * Built static so s6-init needs nothing but s6 and execline at run time.
 *
 *   s6-init-helper boot PROG...      prepare /run/s6 (and the VM, when booted as a VM's
 *                                    init), then exec PROG... (execline chain loading)
 *   s6-init-helper services [NARGS]  copy /etc/services.d into the scan directory and
 *                                    make s6-svscan pick them up (after cont-init.d); when
 *                                    /init was given NARGS > 0 arguments, not the services
 *                                    listed in /etc/s6-init/replaced-by-cmd
 *   s6-init-helper tell CMDS         s6-svscanctl's commands (e.g. t), waiting until
 *                                    s6-svscan listens
 *   s6-init-helper exitcode CODE SIG record the main service's exit code for stage 3;
 *                                    exits 0 if it exited by itself, 1 if a signal killed it
 *   s6-init-helper log WORDS...      print "s6-init: WORDS" on stderr
 *   s6-init-helper shutdown          (PID 1, last step) TERM everything, wait
 *                                    S6_KILL_GRACETIME ms, KILL the rest, then exit with the
 *                                    recorded code (container) or power off (VM)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN "/run/s6"
#define ENVDIR RUN "/container_environment"
#define STAGE3 RUN "/env-stage3"
#define SCANDIR RUN "/services"
#define IMAGE_ENV "/etc/s6-init/env"
#define SERVICES "/etc/services.d"
#define LIBEXEC "/usr/libexec/s6-init"
#define REPLACED "/etc/s6-init/replaced-by-cmd"

extern char **environ;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
	va_list ap;
	char buf[1024];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	dprintf(2, "s6-init: %s\n", buf);
}

static int mkdirs(const char *path, mode_t mode) {
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int write_file(const char *path, const char *data, size_t len, mode_t mode) {
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return close(fd);
}

/* Reads a whole small file; NULL if missing. */
static char *read_file(const char *path, size_t *len) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

static long env_ms(const char *name, long dflt) {
	const char *v = getenv(name);
	if (!v || !*v)
		return dflt;
	char *end;
	long n = strtol(v, &end, 10);
	return (*end || n < 0) ? dflt : n;
}

/* The rule: a kernel starts init with nothing mounted on /proc; every container runtime
 * (docker, podman, runc, bubblewrap) mounts /proc before starting PID 1. S6_INIT_MODE
 * (vm or container) overrides. */
static int is_vm(void) {
	const char *m = getenv("S6_INIT_MODE");
	if (m && !strcmp(m, "vm"))
		return 1;
	if (m && !strcmp(m, "container"))
		return 0;
	return access("/proc/self/stat", F_OK) != 0;
}

static void try_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                      const char *data) {
	mkdirs(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
		say("mount %s on %s: %s", type, dst, strerror(errno));
}

static void lo_up(void) {
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		say("lo: socket: %s", strerror(errno));
		return;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			say("lo: up: %s", strerror(errno));
	} else {
		say("lo: %s", strerror(errno));
	}
	close(s);
}

static void set_hostname(void) {
	char *h = read_file("/etc/hostname", NULL);
	const char *name = "localhost";
	if (h) {
		h[strcspn(h, " \t\r\n")] = 0;
		if (*h)
			name = h;
	}
	if (sethostname(name, strlen(name)) < 0)
		say("sethostname %s: %s", name, strerror(errno));
	free(h);
}

static void vm_setup(void) {
	try_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	try_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	/* The kernel may have mounted devtmpfs already (CONFIG_DEVTMPFS_MOUNT): EBUSY is fine. */
	try_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	try_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=000");
	try_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	try_mount("run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	lo_up();
	set_hostname();
}

/* Environment variables from the image (written by `assemble --init s6`), for a VM where no
 * runtime set them: each file NAME holds a value; variables already set win. */
static void load_image_env(void) {
	DIR *d = opendir(IMAGE_ENV);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || getenv(e->d_name))
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", IMAGE_ENV, e->d_name);
		char *v = read_file(path, NULL);
		if (v) {
			setenv(e->d_name, v, 0);
			free(v);
		}
	}
	closedir(d);
}

static int dump_env(void) {
	for (char **e = environ; *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq || eq == *e)
			continue;
		char name[256];
		size_t n = (size_t)(eq - *e);
		if (n >= sizeof name || memchr(*e, '/', n))
			continue;
		memcpy(name, *e, n);
		name[n] = 0;
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", ENVDIR, name);
		if (write_file(path, eq + 1, strlen(eq + 1), 0644) < 0) {
			say("%s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int copy_tree(const char *src, const char *dst) {
	struct stat st;
	if (lstat(src, &st) < 0)
		return -1;
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(src, target, sizeof target - 1);
		if (n < 0)
			return -1;
		target[n] = 0;
		return symlink(target, dst) < 0 && errno != EEXIST ? -1 : 0;
	}
	if (S_ISREG(st.st_mode)) {
		size_t len;
		char *data = read_file(src, &len);
		if (!data)
			return -1;
		int r = write_file(dst, data, len, st.st_mode & 07777);
		free(data);
		if (r == 0)
			chmod(dst, st.st_mode & 07777);
		return r;
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	if (mkdir(dst, st.st_mode & 07777) < 0 && errno != EEXIST)
		return -1;
	DIR *d = opendir(src);
	if (!d)
		return -1;
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char s[PATH_MAX], t[PATH_MAX];
		snprintf(s, sizeof s, "%s/%s", src, e->d_name);
		snprintf(t, sizeof t, "%s/%s", dst, e->d_name);
		if (copy_tree(s, t) < 0) {
			say("copy %s: %s", s, strerror(errno));
			r = -1;
		}
	}
	closedir(d);
	return r;
}

/* /etc/services.d is copied to a writable scan directory: s6-supervise writes its state
 * (supervise/, event/) inside each service directory, and the image may be read-only. */
/* Whether service `name` is listed (a line of its own) in /etc/s6-init/replaced-by-cmd:
 * the service `assemble --init s6` made of the image's CMD, which a command given to /init
 * replaces, as `docker run IMAGE CMD` replaces the image's CMD. */
static int replaced(const char *name) {
	char *list = read_file(REPLACED, NULL);
	if (!list)
		return 0;
	int found = 0;
	for (char *save = NULL, *l = strtok_r(list, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (!strcmp(l, name))
			found = 1;
	free(list);
	return found;
}

static int copy_services(int skip_replaced) {
	DIR *d = opendir(SERVICES);
	if (!d)
		return 0;
	long grace = env_ms("S6_SERVICES_GRACETIME", 3000);
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || (skip_replaced && replaced(e->d_name)))
			continue;
		char s[PATH_MAX], t[PATH_MAX], tk[PATH_MAX + 16];
		snprintf(s, sizeof s, "%s/%s", SERVICES, e->d_name);
		snprintf(t, sizeof t, "%s/%s", SCANDIR, e->d_name);
		struct stat st;
		if (stat(s, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (copy_tree(s, t) < 0)
			r = -1;
		/* A service that ignores SIGTERM is killed after S6_SERVICES_GRACETIME. */
		snprintf(tk, sizeof tk, "%s/timeout-kill", t);
		if (access(tk, F_OK) != 0) {
			char v[32];
			int n = snprintf(v, sizeof v, "%ld\n", grace);
			write_file(tk, v, (size_t)n, 0644);
		}
	}
	closedir(d);
	return r;
}

static int boot(char **prog) {
	int vm = is_vm();
	if (vm)
		vm_setup();
	load_image_env();
	if (!getenv("PATH"))
		setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	if (mkdirs(ENVDIR, 0755) < 0 || mkdirs(STAGE3, 0755) < 0 ||
	    mkdirs(SCANDIR "/.s6-svscan", 0755) < 0) {
		say("cannot create %s: %s; /run must be writable (a tmpfs, or a writable root)", RUN,
		    strerror(errno));
		return 111;
	}
	if (dump_env() < 0)
		return 111;
	const char *mode = vm ? "vm\n" : "container\n";
	write_file(STAGE3 "/S6_INIT_MODE", mode, strlen(mode), 0644);
	if (symlink(LIBEXEC "/stage3", SCANDIR "/.s6-svscan/finish") < 0 && errno != EEXIST) {
		say("%s: %s", SCANDIR "/.s6-svscan/finish", strerror(errno));
		return 111;
	}
	if (!prog[0])
		return 0;
	execvp(prog[0], prog);
	say("exec %s: %s", prog[0], strerror(errno));
	return 111;
}

/* Sends commands to s6-svscan through its control FIFO, as s6-svscanctl does. Stage 2 runs
 * beside a starting s6-svscan: until it listens, opening the FIFO fails with ENXIO, so
 * retry for a while instead of failing like s6-svscanctl. */
static int tell(const char *cmds) {
	struct timespec step = {0, 20 * 1000 * 1000};
	for (int i = 0; i < 1500; i++) {
		int fd = open(SCANDIR "/.s6-svscan/control", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = write(fd, cmds, strlen(cmds));
			close(fd);
			return n == (ssize_t)strlen(cmds) ? 0 : 111;
		}
		nanosleep(&step, NULL);
	}
	say("s6-svscan does not listen on %s/.s6-svscan/control", SCANDIR);
	return 111;
}

/* After cont-init.d: the services enter the scan directory and s6-svscan scans. */
static int services(const char *nargs) {
	int r = copy_services(nargs && strtol(nargs, NULL, 10) > 0);
	if (r < 0)
		say("some service directories could not be copied to %s", SCANDIR);
	return tell("a") || r < 0 ? 111 : 0;
}

static int exitcode(const char *code, const char *sig) {
	long c = strtol(code, NULL, 10);
	long s = sig ? strtol(sig, NULL, 10) : 0;
	long v = c == 256 ? 128 + s : c;
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%ld", v);
	write_file(STAGE3 "/S6_STAGE2_EXITED", buf, (size_t)n, 0644);
	return c == 256 ? 1 : 0;
}

static void reap_until(long ms) {
	struct timespec step = {0, 20 * 1000 * 1000};
	for (long waited = 0;; waited += 20) {
		pid_t p;
		while ((p = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (p < 0 && errno == ECHILD)
			return;
		if (waited >= ms)
			return;
		nanosleep(&step, NULL);
	}
}

static int shutdown_all(void) {
	long grace = env_ms("S6_KILL_GRACETIME", 3000);
	if (getpid() == 1) {
		kill(-1, SIGTERM);
		kill(-1, SIGCONT);
		reap_until(grace);
		kill(-1, SIGKILL);
		reap_until(1000);
	}
	char *c = read_file(STAGE3 "/S6_STAGE2_EXITED", NULL);
	int code = c ? (int)strtol(c, NULL, 10) : 0;
	free(c);
	char *m = read_file(STAGE3 "/S6_INIT_MODE", NULL);
	int vm = m && !strncmp(m, "vm", 2);
	free(m);
	if (vm && getpid() == 1) {
		const char *how = getenv("S6_VM_SHUTDOWN");
		int reboot_instead = how && !strcmp(how, "reboot");
		say("main service exited %d: %s", code, reboot_instead ? "rebooting" : "powering off");
		sync();
		reboot(reboot_instead ? RB_AUTOBOOT : RB_POWER_OFF);
		say("reboot: %s", strerror(errno));
		for (;;)
			pause();
	}
	return code & 0xff;
}

int main(int argc, char **argv) {
	if (argc < 2) {
		say("usage: s6-init-helper boot PROG... | services [NARGS] | tell CMDS | exitcode CODE SIG | log WORDS... | shutdown");
		return 100;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "boot"))
		return boot(argv + 2);
	if (!strcmp(cmd, "services"))
		return services(argc >= 3 ? argv[2] : NULL);
	if (!strcmp(cmd, "tell") && argc >= 3)
		return tell(argv[2]);
	if (!strcmp(cmd, "exitcode") && argc >= 3)
		return exitcode(argv[2], argc >= 4 ? argv[3] : NULL);
	if (!strcmp(cmd, "log")) {
		char buf[1024] = "";
		for (int i = 2; i < argc; i++) {
			strncat(buf, argv[i], sizeof buf - strlen(buf) - 2);
			if (i + 1 < argc)
				strncat(buf, " ", sizeof buf - strlen(buf) - 1);
		}
		say("%s", buf);
		return 0;
	}
	if (!strcmp(cmd, "shutdown"))
		return shutdown_all();
	say("unknown command %s", cmd);
	return 100;
}
