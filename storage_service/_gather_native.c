/* Row gather for Store.take_bytes: one pass from the memory-mapped record batches into `out`,
 * guarded so that a shard truncated under the server fails the call instead of the process.
 *
 * Why C: with several record batches numpy needs a sort by batch, one take per batch into a
 * temporary and a fancy-index scatter into the output, i.e. every sample byte moves twice plus
 * per-row index work (measured 0.47 CPU-s per GB of 784 B rows, most of a stream's server
 * CPU). Here each row is found by binary search over the batch starts and copied once, with
 * the next rows prefetched (ids are a shuffled order: every row is a cache miss).
 *
 *   ids[i] ──upper_bound(starts)──> batch b ──> bases[b] + (ids[i] - starts[b]) * row_bytes
 *          ──memcpy(row_bytes)──> out + i * row_bytes
 *
 * Why a guard: touching a page of a file mapping that lies past the file's end (someone
 * truncated or rewrote the shard) raises SIGBUS, and so does an I/O error under a mapping. A
 * size check before the copy cannot prevent that (the file can shrink between the check and
 * the copy), and Python cannot catch SIGBUS. So the copies run with a per-thread jump buffer
 * armed: our SIGBUS handler jumps back out of the copy and the call returns 1 (the caller
 * raises a data-loss error and fails only that data set). A SIGBUS outside an armed copy goes
 * to whatever handler was there before ours (faulthandler, or the default: a core dump), as if
 * we had never been installed. The handler is (re)installed on each call if someone replaced
 * it (faulthandler.enable() after us): one sigaction() read per call, ~1 us here (a gather of
 * a 1 MiB batch takes ~300 us).
 *
 * Contract (checked by storage_service/_gather.py before the call):
 *   bases[n_batches]      row 0 of each record batch (rows contiguous, row_bytes apart)
 *   starts[n_batches + 1] first id of each batch, ascending, starts[0] = 0, last = num rows
 *   ids[n]                every id in [0, starts[n_batches])
 *   out                   n * row_bytes writable bytes, not overlapping the batches
 * Loaded with ctypes, which releases the GIL: streams gather in parallel.
 */
#define _GNU_SOURCE /* sigaction, siginfo_t, sigsetjmp under -std=c11 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#define PREFETCH_AHEAD 8

static inline int64_t batch_of(const int64_t *starts, int64_t n_batches, int64_t id) {
    int64_t lo = 0, hi = n_batches; /* invariant: starts[lo] <= id < starts[hi] */
    while (hi - lo > 1) {
        int64_t mid = (lo + hi) >> 1;
        if (starts[mid] <= id) lo = mid; else hi = mid;
    }
    return lo;
}

static inline const uint8_t *row_ptr(const uint8_t *const *bases, const int64_t *starts, int64_t n_batches,
                                     int64_t id, int64_t row_bytes) {
    int64_t b = n_batches == 1 ? 0 : batch_of(starts, n_batches, id);
    return bases[b] + (id - starts[b]) * row_bytes;
}

/* Unguarded: only for memory that cannot shrink under us (kept for the benchmark's baseline). */
void nessa_gather_rows(const uint8_t *const *bases, const int64_t *starts, int64_t n_batches,
                       const int64_t *ids, int64_t n, int64_t row_bytes, uint8_t *out) {
    for (int64_t i = 0; i < n; ++i) {
        if (i + PREFETCH_AHEAD < n) {
            const uint8_t *next = row_ptr(bases, starts, n_batches, ids[i + PREFETCH_AHEAD], row_bytes);
            __builtin_prefetch(next); /* a prefetch never faults, even past the end of a file */
            if (row_bytes > 64) __builtin_prefetch(next + 64);
        }
        memcpy(out + i * row_bytes, row_ptr(bases, starts, n_batches, ids[i], row_bytes), (size_t)row_bytes);
    }
}

/* ---- the SIGBUS guard ------------------------------------------------------------------- */

static __thread sigjmp_buf *volatile armed; /* set while this thread copies from a mapping */
static struct sigaction previous;  /* the handler ours replaced: gets every fault not ours */
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_sigbus(int sig, siginfo_t *info, void *context) {
    sigjmp_buf *jb = armed;
    if (jb != NULL) {
        armed = NULL;
        siglongjmp(*jb, 1); /* SA_NODEFER: SIGBUS was not blocked for the handler, no mask to restore */
    }
    /* Not inside a guarded copy: behave as if we were not installed. */
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction != NULL) {
            previous.sa_sigaction(sig, info, context);
            return;
        }
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    /* Default action: restore it and return; the faulting access re-executes and kills us. */
    signal(sig, SIG_DFL);
}

static int ensure_handler(void) {
    struct sigaction cur;
    if (sigaction(SIGBUS, NULL, &cur) != 0) return -1;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus) return 0;
    pthread_mutex_lock(&install_lock);
    int rc = 0;
    if (sigaction(SIGBUS, NULL, &cur) == 0 && !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus)) {
        struct sigaction ours;
        memset(&ours, 0, sizeof ours);
        ours.sa_sigaction = on_sigbus;
        /* SA_NODEFER: the mask stays as it was, so the jump out needs no saved mask (sigsetjmp
         * without one: no sigprocmask syscall per call, ~0.7 us here). */
        ours.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&ours.sa_mask);
        struct sigaction old;
        if (sigaction(SIGBUS, &ours, &old) != 0) rc = -1;
        else previous = old;
    }
    pthread_mutex_unlock(&install_lock);
    return rc;
}

/* 0: copied; 1: SIGBUS during the copy (a mapping shrank or failed to read): `out` is partial;
 * -1: the handler could not be installed (nothing copied). */
int nessa_gather_rows_guarded(const uint8_t *const *bases, const int64_t *starts, int64_t n_batches,
                              const int64_t *ids, int64_t n, int64_t row_bytes, uint8_t *out) {
    if (ensure_handler() != 0) return -1;
    sigjmp_buf jb;
    if (sigsetjmp(jb, 0) != 0) return 1; /* the handler disarmed before jumping */
    armed = &jb;
    nessa_gather_rows(bases, starts, n_batches, ids, n, row_bytes, out);
    armed = NULL;
    return 0;
}

/* Contiguous copy under the same guard (Store.iter_batches); same return codes. */
int nessa_copy_guarded(uint8_t *dst, const uint8_t *src, int64_t nbytes) {
    if (ensure_handler() != 0) return -1;
    sigjmp_buf jb;
    if (sigsetjmp(jb, 0) != 0) return 1;
    armed = &jb;
    memcpy(dst, src, (size_t)nbytes);
    armed = NULL;
    return 0;
}
