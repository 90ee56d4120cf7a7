/*
 * fsync-journal: an LD_PRELOAD library for the jepsen-like harness's emulation of a lost page cache (lazyfs.ts).
 *
 * A kill -9 on this machine loses nothing: the kernel's page cache survives the process, so data a member wrote
 * but never fsynced is still there when it restarts. To see what a power failure would leave, this library
 * journals durability: after every successful fsync() or fdatasync() of a regular file under $CAIRN_FSYNC_PREFIX
 * it appends "S <size> <path>" to $CAIRN_FSYNC_JOURNAL, where size is the file's size when the sync began (all of
 * it is durable once the call returns), and after every rename() "R <old> <new>". After killing the member, the
 * harness truncates each file to its last journaled durable size: what was written and never synced is gone.
 * The model fits append-only files published by rename (LevelDB's log, MANIFEST, tables, CURRENT); it does not
 * undo in-place overwrites, and treats creations, renames and unlinks as durable at once, as lazyfs does.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int journal_fd = -1;
static const char *prefix = NULL;
static size_t prefix_length = 0;
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);

static void initialise(void) {
  real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  real_rename = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
  real_renameat = (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");
  const char *journal = getenv("CAIRN_FSYNC_JOURNAL");
  prefix = getenv("CAIRN_FSYNC_PREFIX");
  if (prefix != NULL) prefix_length = strlen(prefix);
  if (journal != NULL && prefix != NULL) journal_fd = open(journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static int under_prefix(const char *path) {
  return journal_fd >= 0 && strncmp(path, prefix, prefix_length) == 0;
}

static void journal_line(const char *line, int length) {
  if (length <= 0 || length >= 2 * PATH_MAX + 64) return;
  ssize_t written = write(journal_fd, line, (size_t)length);
  (void)written;
}

/* path_of_fd resolves an open descriptor to its path; returns 0 on success. */
static int path_of_fd(int fd, char *path, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, size - 1);
  if (n <= 0) return -1;
  path[n] = '\0';
  return 0;
}

/* absolute_path resolves a path relative to dirfd (AT_FDCWD for the working directory). */
static int absolute_path(int dirfd, const char *name, char *out, size_t size) {
  char base[PATH_MAX];
  if (name[0] == '/') return snprintf(out, size, "%s", name) >= (int)size ? -1 : 0;
  if (dirfd == AT_FDCWD) {
    if (getcwd(base, sizeof base) == NULL) return -1;
  } else if (path_of_fd(dirfd, base, sizeof base) != 0) {
    return -1;
  }
  return snprintf(out, size, "%s/%s", base, name) >= (int)size ? -1 : 0;
}

static int synced(int fd, int (*sync)(int)) {
  struct stat before;
  int have_size = fstat(fd, &before) == 0 && S_ISREG(before.st_mode);
  int result = sync(fd);
  if (result != 0 || !have_size) return result;
  char path[PATH_MAX];
  if (path_of_fd(fd, path, sizeof path) != 0 || !under_prefix(path)) return result;
  char line[PATH_MAX + 64];
  journal_line(line, snprintf(line, sizeof line, "S\t%lld\t%s\n", (long long)before.st_size, path));
  return result;
}

int fsync(int fd) {
  pthread_once(&once, initialise);
  return synced(fd, real_fsync);
}

int fdatasync(int fd) {
  pthread_once(&once, initialise);
  return synced(fd, real_fdatasync);
}

static void journal_rename(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
  char from[PATH_MAX], to[PATH_MAX];
  if (absolute_path(olddirfd, oldpath, from, sizeof from) != 0) return;
  if (absolute_path(newdirfd, newpath, to, sizeof to) != 0) return;
  if (!under_prefix(from) && !under_prefix(to)) return;
  char line[2 * PATH_MAX + 64];
  journal_line(line, snprintf(line, sizeof line, "R\t%s\t%s\n", from, to));
}

int rename(const char *oldpath, const char *newpath) {
  pthread_once(&once, initialise);
  int result = real_rename(oldpath, newpath);
  if (result == 0) journal_rename(AT_FDCWD, oldpath, AT_FDCWD, newpath);
  return result;
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
  pthread_once(&once, initialise);
  int result = real_renameat(olddirfd, oldpath, newdirfd, newpath);
  if (result == 0) journal_rename(olddirfd, oldpath, newdirfd, newpath);
  return result;
}
