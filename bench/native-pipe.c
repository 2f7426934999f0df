/*
 * A reference for `npm run bench -- gateway`, not part of tightloop: the floor of a relay whose
 * per-message loop is native code, as pgbouncer's is. It accepts on 127.0.0.1:<listen-port>,
 * connects each client to 127.0.0.1:<upstream-port> and copies bytes both ways, parsing nothing.
 * One thread, level-triggered epoll, each socket registered once; a side whose peer cannot take
 * more bytes stops being read until the peer drains (bounded memory, as the gateway's relay).
 *
 *   cc -O2 -o native-pipe native-pipe.c && ./native-pipe <listen-port> <upstream-port>
 *
 * Prints the port it listens on (useful with 0) and runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536

struct side {
  int fd;
  struct side *peer;
  /* Bytes read from this side that its peer has not taken yet. */
  char buf[BUF];
  size_t off, len;
  int reading; /* EPOLLIN armed */
};

static int ep;

static void arm(struct side *s) {
  struct epoll_event ev = {0};
  ev.events = (s->reading ? EPOLLIN : 0) | (s->peer->len > 0 ? EPOLLOUT : 0);
  ev.data.ptr = s;
  epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
}

/* Closes both sides. The pair's memory is kept (an event for the other side may still be in this
 * batch): a few kB per connection of a benchmark run. */
static void drop(struct side *s) {
  if (s->fd < 0) return;
  close(s->fd);
  close(s->peer->fd);
  s->fd = s->peer->fd = -1;
}

/* Writes what `from` holds to its peer; 0 when all of it went, 1 when some waits, -1 on error. */
static int flush(struct side *from) {
  while (from->len > 0) {
    ssize_t n = send(from->peer->fd, from->buf + from->off, from->len, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN ? 1 : -1;
    from->off += (size_t)n;
    from->len -= (size_t)n;
  }
  from->off = 0;
  return 0;
}

static int tcp_listen(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 512) < 0) { perror("listen"); exit(2); }
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);
  return fd;
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: native-pipe <listen-port> <upstream-port>\n"); return 2; }
  int lfd = tcp_listen(atoi(argv[1]));
  struct sockaddr_in up = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ep = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    for (int i = 0; i < n; i++) {
      struct side *s = evs[i].data.ptr;
      if (s == NULL) {
        int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (c < 0) continue;
        int u = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        if (connect(u, (struct sockaddr *)&up, sizeof up) < 0) { close(c); close(u); continue; }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(u, F_SETFL, fcntl(u, F_GETFL) | O_NONBLOCK);
        struct side *pair = calloc(2, sizeof *pair);
        pair[0].fd = c; pair[1].fd = u;
        pair[0].peer = &pair[1]; pair[1].peer = &pair[0];
        pair[0].reading = pair[1].reading = 1;
        for (int k = 0; k < 2; k++) {
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &pair[k]};
          epoll_ctl(ep, EPOLL_CTL_ADD, pair[k].fd, &ev);
        }
        continue;
      }
      if (s->fd < 0) continue;
      /* Writable: flush what the peer read for us. */
      if (evs[i].events & EPOLLOUT) {
        int r = flush(s->peer);
        if (r < 0) { drop(s); continue; }
        if (r == 0) { s->peer->reading = 1; arm(s); arm(s->peer); }
      }
      if (s->fd < 0) continue;
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (!s->reading) continue;
        ssize_t got = recv(s->fd, s->buf, BUF, 0);
        if (got == 0 || (got < 0 && errno != EAGAIN)) { drop(s); continue; }
        if (got < 0) continue;
        s->off = 0;
        s->len = (size_t)got;
        int r = flush(s);
        if (r < 0) { drop(s); continue; }
        if (r == 1) { s->reading = 0; arm(s); arm(s->peer); }
      }
    }
  }
}
