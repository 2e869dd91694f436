/*
 * clock.h - the two clocks every process reads.
 *
 * Time-outs, intervals and durations use the monotonic clock, which no
 * one can set back.  What is recorded to be compared later, possibly by
 * another process or after a restart of the machine (when a session went
 * offline, when a message was received), uses the wall clock.
 */
#ifndef PMQ_CLOCK_H
#define PMQ_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
clock_mono_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t
clock_mono_ms(void)
{
	return clock_mono_us() / 1000;
}

/* Milliseconds since 1970, UTC. */
static inline int64_t
clock_wall_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif /* PMQ_CLOCK_H */
