/*
 * peakrss OUT PROGRAM [ARGS...]: runs PROGRAM as a child with this process's file descriptors and
 * environment, waits for it, writes the child's peak resident set size (ru_maxrss from wait4, in KiB) to
 * the file OUT, and exits with the child's status (128 + signal when it was killed, as a shell would).
 *
 * `npm run bench` starts it through runSmtpd (test/helpers/smtpd.ts) in place of bin/nqqueue or
 * bin/nqqueue-qq, so the program under test gets qmail-smtpd's real pipes on fd 0, 1, 2 and 6 — and this
 * wrapper closes its own copies at once, so the pipes reach EOF (or EPIPE) exactly as without it.
 * ru_maxrss covers the child and the descendants it waited for (Linux folds their peaks in), and survives
 * execve: for bin/nqqueue (a sh launcher that execs node) it is node's peak.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    static const char usage[] = "usage: peakrss OUT PROGRAM [ARGS...]\n";
    if (write(2, usage, sizeof usage - 1) < 0) return 111;
    return 111;
  }
  pid_t pid = fork();
  if (pid < 0) return 111;
  if (pid == 0) {
    execv(argv[2], argv + 2);
    _exit(120);
  }
  /* Keep only fd 2 (for our own complaints): the child's pipes must not be held open by us. */
  for (int fd = 0; fd < 1024; fd++)
    if (fd != 2) close(fd);

  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) return 111;
  }
  int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out >= 0) {
    char line[32];
    int n = snprintf(line, sizeof line, "%ld\n", ru.ru_maxrss);
    if (write(out, line, (size_t)n) != n) {
      /* the caller sees an empty file */
    }
    close(out);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 111;
}
