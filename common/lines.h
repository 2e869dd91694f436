/*
 * lines.h - reading a text file a line at a time, for the files the
 * broker takes from Mosquitto (password and ACL files): line endings
 * (LF or CRLF) and trailing blanks are not part of a line.
 */
#ifndef PMQ_LINES_H
#define PMQ_LINES_H

#include <stdio.h>
#include <sys/types.h>

/*
 * The next line of f into *line (grown as getline() does), its length
 * without the trailing newline and blanks in *len; *lineno counts.
 * Returns 1, or 0 at the end or on an error (ferror(f) tells).
 */
static inline int
lines_next(FILE *f, char **line, size_t *cap, size_t *len, unsigned *lineno)
{
	ssize_t	 n;

	if ((n = getline(line, cap, f)) == -1)
		return 0;
	(*lineno)++;
	*len = (size_t)n;
	while (*len > 0 && ((*line)[*len - 1] == '\n' ||
	    (*line)[*len - 1] == '\r' || (*line)[*len - 1] == ' ' ||
	    (*line)[*len - 1] == '\t'))
		(*len)--;
	return 1;
}

#endif /* PMQ_LINES_H */
