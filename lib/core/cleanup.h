/* core/cleanup.h — scope-bound ownership (DESIGN D6).
 *
 * _cleanup_free_ char *p = ...;   freed when p leaves scope
 * return steal_ptr(&p);           the only way ownership leaves a scope
 * FREE_AND_NULL(p);               free and NULL on one line */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>

#define FREE_AND_NULL(p) do { free(p); (p) = NULL; } while (0)

static inline void cleanup_freep(void *p)
{
        void **pp = (void **)p;
        free(*pp);
        *pp = NULL;
}

static inline void cleanup_closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
        *fd = -1;
}

static inline void cleanup_fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
        *f = NULL;
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(cleanup_freep)
#define _cleanup_close_ _cleanup_(cleanup_closep)
#define _cleanup_fclose_ _cleanup_(cleanup_fclosep)

/* Takes ownership out of a cleanup-managed variable. */
static inline void *steal_ptr_impl(void *pp)
{
        void **p = (void **)pp;
        void *r = *p;
        *p = NULL;
        return r;
}
#define steal_ptr(pp) steal_ptr_impl(pp)

static inline int steal_fd(int *fd)
{
        int r = *fd;
        *fd = -1;
        return r;
}
