/*
 * addr.h - socket addresses as text: "127.0.0.1:1883", "[::1]:1883".
 * The one formatting used in logs, in listener names and between the
 * supervisor and the workers (a listener is named by its bound address).
 */
#ifndef PMQ_ADDR_H
#define PMQ_ADDR_H

#include <stddef.h>

struct sockaddr;

#define ADDR_TEXT_MAX	64

const char	*addr_format(const struct sockaddr *, char *, size_t);
const char	*addr_local(int fd, char *, size_t);
const char	*addr_peer(int fd, char *, size_t);

#endif /* PMQ_ADDR_H */
