/*
 * hello-server: a small service for images run by s6 (assemble --init s6).
 *
 * On start it prints, and appends to $HELLO_OUT (default /tmp/hello-server.log), one line
 * with what a supervisor's set-up decides: pid, uid, gid, working directory, host name
 * and $HELLO_GREETING. It then serves that greeting over HTTP on $HELLO_PORT (default 8080;
 * 0 serves nothing). SIGTERM or SIGINT make it append "stop" and exit with
 * $HELLO_EXIT_CODE (default 0). HELLO_IGNORE_TERM=1 ignores SIGTERM instead (a stubborn
 * service, for trying a supervisor's kill timeouts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
	(void)sig;
	stop = 1;
}

static const char *env_or(const char *name, const char *dflt) {
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

static void record(const char *path, const char *line) {
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "hello-server: %s: %s\n", path, strerror(errno));
		return;
	}
	if (write(fd, line, strlen(line)) < 0)
		fprintf(stderr, "hello-server: %s: %s\n", path, strerror(errno));
	close(fd);
}

int main(void) {
	const char *out = env_or("HELLO_OUT", "/tmp/hello-server.log");
	const char *greeting = env_or("HELLO_GREETING", "hello");
	int port = atoi(env_or("HELLO_PORT", "8080"));
	int exit_code = atoi(env_or("HELLO_EXIT_CODE", "0"));
	char cwd[4096] = "?", host[256] = "?";
	if (!getcwd(cwd, sizeof cwd))
		strcpy(cwd, "?");
	if (gethostname(host, sizeof host) < 0)
		strcpy(host, "?");

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	if (!strcmp(env_or("HELLO_IGNORE_TERM", "0"), "1"))
		signal(SIGTERM, SIG_IGN);
	else
		sigaction(SIGTERM, &sa, NULL);

	char line[8192];
	snprintf(line, sizeof line, "start pid=%d uid=%d gid=%d cwd=%s host=%s greeting=%s\n",
	         (int)getpid(), (int)getuid(), (int)getgid(), cwd, host, greeting);
	fputs(line, stdout);
	fflush(stdout);
	record(out, line);

	int s = -1;
	if (port > 0) {
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
		if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) {
			fprintf(stderr, "hello-server: port %d: %s\n", port, strerror(errno));
			return 1;
		}
		printf("listening on port %d\n", port);
		fflush(stdout);
	}
	while (!stop) {
		if (s < 0) {
			pause();
			continue;
		}
		int c = accept(s, NULL, NULL);
		if (c < 0)
			continue; /* EINTR from SIGTERM ends the loop */
		char req[1024];
		(void)!read(c, req, sizeof req);
		char resp[4096];
		int n = snprintf(resp, sizeof resp,
		                 "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s\n", greeting);
		(void)!write(c, resp, (size_t)n);
		close(c);
	}
	snprintf(line, sizeof line, "stop pid=%d exit=%d\n", (int)getpid(), exit_code);
	fputs(line, stdout);
	record(out, line);
	return exit_code;
}
