/*
 * The inner loop of PDQIndex's multi-index search, compiled: probe one substring table for a
 * batch of queries and verify every candidate on its 256 bits, in one pass.
 *
 * Why: the search is bound by random memory reads (a table's offsets, its ids, the entries'
 * hashes), about three per probe. numpy does each kind in its own pass over arrays it first
 * builds (positions, repeated queries), so a third of its time is passes, not reads. Here each
 * probe's reads follow one another, and a block of probes is walked in stages with the next
 * stage's addresses prefetched, so that many reads are in flight at once.
 *
 * Everything it reads is bounds-checked: a saved index is a file, and a corrupt one must be an
 * error, never a read outside its arrays. Built where a C compiler is present (setup.py,
 * optional); pdq_index.py falls back to numpy without it, with identical results.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define STAGE 256        /* probes walked together */
#define CANDIDATES 1024  /* candidates of a stage held for prefetching; the rest go unprefetched */

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch((address), 0, 0)
#else
#define PREFETCH(address) ((void)0)
#endif

typedef struct {
    const int32_t *offsets;
    Py_ssize_t n_offsets;
    const int32_t *ids;
    Py_ssize_t n_ids;
    const uint64_t *head;
    const uint64_t *tail;
    Py_ssize_t n_entries;
    int radius;
    /* output */
    int64_t *rows;
    int64_t *entries;
    int32_t *dists;
    Py_ssize_t capacity;
    Py_ssize_t found;
} Search;

/* 0 when the entry is recorded (or counted past the capacity), -1 when the index is corrupt. */
#define VERIFY(POP, ATTR)                                                                     \
    ATTR static inline int verify_##POP(Search *s, Py_ssize_t row, int32_t id, const uint64_t *qh,         \
                            const uint64_t *qt) {                                              \
        if (id < 0 || id >= s->n_entries) return -1;                                           \
        int d = POP(s->head[2 * (Py_ssize_t)id] ^ qh[0]) +                                      \
                POP(s->head[2 * (Py_ssize_t)id + 1] ^ qh[1]);                                   \
        if (d > s->radius) return 0;                                                           \
        d += POP(s->tail[2 * (Py_ssize_t)id] ^ qt[0]) + POP(s->tail[2 * (Py_ssize_t)id + 1] ^ qt[1]); \
        if (d > s->radius) return 0;                                                           \
        if (s->found < s->capacity) {                                                          \
            s->rows[s->found] = row;                                                           \
            s->entries[s->found] = id;                                                         \
            s->dists[s->found] = d;                                                            \
        }                                                                                      \
        s->found++;                                                                            \
        return 0;                                                                              \
    }

/* Probes are walked STAGE at a time, whatever query they belong to, in three passes: prefetch
 * the bucket bounds of all, then read them and prefetch the buckets, then read the ids and
 * prefetch the entries' hashes; only then are the candidates verified. */
#define PROBE(POP, ATTR)                                                                       \
    VERIFY(POP, ATTR)                                                                          \
    ATTR static int probe_##POP(Search *s, const uint32_t *keys, Py_ssize_t n_queries,         \
                                Py_ssize_t n_probes, const uint64_t *qheads,                   \
                                const uint64_t *qtails) {                                      \
        int32_t start[STAGE], end[STAGE];                                                      \
        int32_t held[CANDIDATES];                                                              \
        Py_ssize_t held_row[CANDIDATES];                                                       \
        Py_ssize_t total = n_queries * n_probes;                                               \
        for (Py_ssize_t b = 0; b < total; b += STAGE) {                                        \
            Py_ssize_t m = total - b < STAGE ? total - b : STAGE;                              \
            const uint32_t *k = keys + b;                                                      \
            for (Py_ssize_t i = 0; i < m; i++) {                                               \
                if ((Py_ssize_t)k[i] + 1 >= s->n_offsets) return -1;                           \
                PREFETCH(s->offsets + k[i]);                                                   \
            }                                                                                  \
            for (Py_ssize_t i = 0; i < m; i++) {                                               \
                start[i] = s->offsets[k[i]];                                                   \
                end[i] = s->offsets[k[i] + 1];                                                 \
                if (start[i] < 0 || start[i] > end[i] || end[i] > s->n_ids) return -1;         \
                if (start[i] < end[i]) PREFETCH(s->ids + start[i]);                            \
            }                                                                                  \
            Py_ssize_t n_held = 0, row = b / n_probes, probe = b % n_probes;                   \
            for (Py_ssize_t i = 0; i < m; i++, probe++) {                                      \
                if (probe == n_probes) {                                                       \
                    probe = 0;                                                                 \
                    row++;                                                                     \
                }                                                                              \
                for (int32_t p = start[i]; p < end[i]; p++) {                                  \
                    int32_t id = s->ids[p];                                                    \
                    if (n_held < CANDIDATES && id >= 0 && id < s->n_entries) {                 \
                        PREFETCH(s->head + 2 * (Py_ssize_t)id);                                \
                        held[n_held] = id;                                                     \
                        held_row[n_held++] = row;                                              \
                    } else if (verify_##POP(s, row, id, qheads + 2 * row, qtails + 2 * row) < 0) { \
                        return -1;                                                             \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            for (Py_ssize_t i = 0; i < n_held; i++) {                                          \
                Py_ssize_t row = held_row[i];                                                  \
                if (verify_##POP(s, row, held[i], qheads + 2 * row, qtails + 2 * row) < 0)     \
                    return -1;                                                                 \
            }                                                                                  \
        }                                                                                      \
        return 0;                                                                              \
    }

static inline int popcount_portable(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}
PROBE(popcount_portable, )

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
/* The POPCNT instruction, where the processor has it (checked at import). */
#define popcount_builtin(x) __builtin_popcountll(x)
PROBE(popcount_builtin, __attribute__((target("popcnt"))))
#define HAVE_POPCNT_KERNEL 1
#elif defined(__GNUC__) || defined(__clang__)
#define popcount_builtin(x) __builtin_popcountll(x)
PROBE(popcount_builtin, )
#define HAVE_POPCNT_KERNEL 1
#endif

static int use_builtin = 0;

static int expect(Py_buffer *view, Py_ssize_t itemsize, const char *name) {
    if (view->len % itemsize != 0) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes is not a whole number of %zd-byte items",
                     name, view->len, itemsize);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(probe_doc,
             "probe(offsets, ids, head, tail, keys, query_heads, query_tails, radius, rows,\n"
             "      entries, dists) -> found\n\n"
             "For each query q and each of its probe keys (keys: n_queries x n_probes uint32),\n"
             "every entry of the table's bucket within `radius` bits of the query on all 256\n"
             "bits: (q, entry id, distance) written to rows/entries/dists (int64, int64, int32)\n"
             "up to their length. Returns how many there are, which may exceed that length (call\n"
             "again with room for them). ValueError where the index is corrupt.");

static PyObject *probe(PyObject *self, PyObject *args) {
    Py_buffer offsets, ids, head, tail, keys, qheads, qtails, rows, entries, dists;
    int radius;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*iw*w*w*", &offsets, &ids, &head, &tail, &keys,
                          &qheads, &qtails, &radius, &rows, &entries, &dists))
        return NULL;
    PyObject *result = NULL;
    if (expect(&offsets, 4, "offsets") || expect(&ids, 4, "ids") || expect(&head, 16, "head") ||
        expect(&tail, 16, "tail") || expect(&keys, 4, "keys") ||
        expect(&qheads, 16, "query_heads") || expect(&qtails, 16, "query_tails") ||
        expect(&rows, 8, "rows") || expect(&entries, 8, "entries") || expect(&dists, 4, "dists"))
        goto done;
    Py_ssize_t n_queries = qheads.len / 16;
    Py_ssize_t capacity = rows.len / 8;
    if (qtails.len != qheads.len || tail.len != head.len || entries.len / 8 != capacity ||
        dists.len / 4 != capacity || (n_queries && (keys.len / 4) % n_queries)) {
        PyErr_SetString(PyExc_ValueError, "probe: array lengths do not agree");
        goto done;
    }
    Search s = {
        .offsets = offsets.buf, .n_offsets = offsets.len / 4, .ids = ids.buf,
        .n_ids = ids.len / 4, .head = head.buf, .tail = tail.buf, .n_entries = head.len / 16,
        .radius = radius, .rows = rows.buf, .entries = entries.buf, .dists = dists.buf,
        .capacity = capacity, .found = 0,
    };
    Py_ssize_t n_probes = n_queries ? (keys.len / 4) / n_queries : 0;
    int status;
    Py_BEGIN_ALLOW_THREADS
#ifdef HAVE_POPCNT_KERNEL
    if (use_builtin)
        status = probe_popcount_builtin(&s, keys.buf, n_queries, n_probes, qheads.buf, qtails.buf);
    else
#endif
        status = probe_popcount_portable(&s, keys.buf, n_queries, n_probes, qheads.buf, qtails.buf);
    Py_END_ALLOW_THREADS
    if (status < 0) {
        PyErr_SetString(PyExc_ValueError, "corrupt PDQ index (a table points outside it)");
        goto done;
    }
    result = PyLong_FromSsize_t(s.found);
done:
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&head);
    PyBuffer_Release(&tail);
    PyBuffer_Release(&keys);
    PyBuffer_Release(&qheads);
    PyBuffer_Release(&qtails);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&entries);
    PyBuffer_Release(&dists);
    return result;
}

static PyMethodDef methods[] = {
    {"probe", probe, METH_VARARGS, probe_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_mih", "PDQIndex's probe-and-verify loop, compiled.", -1, methods,
};

PyMODINIT_FUNC PyInit__mih(void) {
#if defined(HAVE_POPCNT_KERNEL) && defined(__x86_64__)
    __builtin_cpu_init();
    use_builtin = __builtin_cpu_supports("popcnt");
#elif defined(HAVE_POPCNT_KERNEL)
    use_builtin = 1;
#endif
    return PyModule_Create(&module);
}
