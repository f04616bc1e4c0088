/*
 * The small loops of the fast PDQ that numpy runs as many calls: resampling a luminance image
 * to the 64 x 64 buffer through two banded operators, the reference's quality, and a buffer's
 * hash (the 16 x 16 DCT, its median, the bits).
 *
 * Why: on a ~512 px JPEG they cost ~65 us in numpy (a gather, a conversion and a batched
 * product per resampling pass, six calls for the quality, two products, a partition and a
 * packing for the hash), a sixth of the whole hash pass, for ~0.3 MFLOP of work. Here each is
 * one call. The resample and the DCT give the same values to float rounding (sums in another
 * order: a hash bit at the median may rarely differ); the quality is the reference's
 * arithmetic, identical for the same buffer. Built where a C compiler is present (setup.py,
 * optional); pdq_fast.py falls back to numpy without it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 64

/* The resampling loops vectorise; where the compiler can, an AVX2 copy is chosen at load time
 * on processors that have it (the baseline x86-64 copy does 4 floats at a time, AVX2 8). Two
 * loops the compiler does not vectorise well have an AVX2 version written with intrinsics,
 * chosen at run time (AVX2_KERNELS): the uint8 first pass and the transposition. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#define AVX2_KERNELS 1
#include <immintrin.h>
#else
#define VECTOR_CLONES
#endif

/* Sums weights[i][k] * line[index[i][k]] over k for each of the 64 outputs, for every column
 * of a row-major image: across[i][x] = sum_k w[i][k] * image[index[i][k]][x]. */
#define FIRST_PASS(T)                                                                         \
    VECTOR_CLONES static void first_pass_##T(const T *image, Py_ssize_t width, const int64_t *index,        \
                               const float *weights, Py_ssize_t taps, float *across) {       \
        for (Py_ssize_t i = 0; i < SIDE; i++) {                                               \
            float *out = across + i * width;                                                  \
            memset(out, 0, (size_t)width * sizeof(float));                                    \
            for (Py_ssize_t k = 0; k < taps; k++) {                                           \
                const float w = weights[i * taps + k];                                        \
                const T *line = image + index[i * taps + k] * width;                          \
                for (Py_ssize_t x = 0; x < width; x++) out[x] += w * (float)line[x];          \
            }                                                                                 \
        }                                                                                     \
    }
FIRST_PASS(uint8_t)
FIRST_PASS(float)

/* transposed[x][i] = across[i][x], in 8 x 8 tiles: both sides of a tile stay in the cache. */
static void transpose(const float *across, float *transposed, Py_ssize_t width) {
    Py_ssize_t x0 = 0;
    for (; x0 + 8 <= width; x0 += 8)
        for (Py_ssize_t i0 = 0; i0 < SIDE; i0 += 8)
            for (Py_ssize_t x = x0; x < x0 + 8; x++)
                for (Py_ssize_t i = i0; i < i0 + 8; i++)
                    transposed[x * SIDE + i] = across[i * width + x];
    for (; x0 < width; x0++)
        for (Py_ssize_t i = 0; i < SIDE; i++) transposed[x0 * SIDE + i] = across[i * width + x0];
}

#ifdef AVX2_KERNELS
/* first_pass_uint8_t, 16 columns at a time summed over every tap in registers (the same sums
 * in the same order: identical results). */
__attribute__((target("avx2"))) static void first_pass_uint8_avx2(
    const uint8_t *image, Py_ssize_t width, const int64_t *index, const float *weights,
    Py_ssize_t taps, float *across) {
    for (Py_ssize_t i = 0; i < SIDE; i++) {
        float *out = across + i * width;
        const float *w = weights + i * taps;
        const int64_t *rows = index + i * taps;
        Py_ssize_t x = 0;
        for (; x + 16 <= width; x += 16) {
            __m256 low = _mm256_setzero_ps(), high = _mm256_setzero_ps();
            for (Py_ssize_t k = 0; k < taps; k++) {
                const __m256 wk = _mm256_set1_ps(w[k]);
                const __m128i bytes = _mm_loadu_si128((const __m128i *)(image + rows[k] * width + x));
                const __m256 a = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
                const __m256 b = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)));
                low = _mm256_add_ps(low, _mm256_mul_ps(wk, a));
                high = _mm256_add_ps(high, _mm256_mul_ps(wk, b));
            }
            _mm256_storeu_ps(out + x, low);
            _mm256_storeu_ps(out + x + 8, high);
        }
        for (; x < width; x++) {
            float sum = 0.0f;
            for (Py_ssize_t k = 0; k < taps; k++) sum += w[k] * (float)image[rows[k] * width + x];
            out[x] = sum;
        }
    }
}

/* transpose, each 8 x 8 tile in eight registers. */
__attribute__((target("avx2"))) static void transpose_avx2(const float *across, float *transposed,
                                                           Py_ssize_t width) {
    Py_ssize_t x0 = 0;
    for (; x0 + 8 <= width; x0 += 8)
        for (Py_ssize_t i0 = 0; i0 < SIDE; i0 += 8) {
            __m256 r[8], t[8], u[8];
            for (int n = 0; n < 8; n++) r[n] = _mm256_loadu_ps(across + (i0 + n) * width + x0);
            for (int n = 0; n < 8; n += 2) {
                t[n] = _mm256_unpacklo_ps(r[n], r[n + 1]);
                t[n + 1] = _mm256_unpackhi_ps(r[n], r[n + 1]);
            }
            for (int n = 0; n < 8; n += 4) {
                u[n] = _mm256_shuffle_ps(t[n], t[n + 2], 0x44);
                u[n + 1] = _mm256_shuffle_ps(t[n], t[n + 2], 0xEE);
                u[n + 2] = _mm256_shuffle_ps(t[n + 1], t[n + 3], 0x44);
                u[n + 3] = _mm256_shuffle_ps(t[n + 1], t[n + 3], 0xEE);
            }
            for (int n = 0; n < 4; n++) {
                float *row = transposed + (x0 + n) * SIDE + i0;
                _mm256_storeu_ps(row, _mm256_permute2f128_ps(u[n], u[n + 4], 0x20));
                _mm256_storeu_ps(row + 4 * SIDE, _mm256_permute2f128_ps(u[n], u[n + 4], 0x31));
            }
        }
    for (; x0 < width; x0++)
        for (Py_ssize_t i = 0; i < SIDE; i++) transposed[x0 * SIDE + i] = across[i * width + x0];
}

static int has_avx2(void) {
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") != 0;
    }
    return known;
}
#endif

/* buffer[i][j] = sum_k w[j][k] * across[i][index[j][k]], through the transpose of across so
 * that this pass also runs along memory. */
VECTOR_CLONES static void second_pass(const float *transposed, const int64_t *index,
                                      const float *weights, Py_ssize_t taps, float *buffer) {
    float column[SIDE];
    for (Py_ssize_t j = 0; j < SIDE; j++) {
        memset(column, 0, sizeof(column));
        for (Py_ssize_t k = 0; k < taps; k++) {
            const float w = weights[j * taps + k];
            const float *line = transposed + index[j * taps + k] * SIDE;
            for (Py_ssize_t i = 0; i < SIDE; i++) column[i] += w * line[i];
        }
        for (Py_ssize_t i = 0; i < SIDE; i++) buffer[i * SIDE + j] = column[i];
    }
}

static int in_range(const int64_t *index, Py_ssize_t n, Py_ssize_t limit) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (index[i] < 0 || index[i] >= limit) return 0;
    return 1;
}

PyDoc_STRVAR(resample_doc,
             "resample(image, height, width, itemsize, row_index, row_weights, col_index,\n"
             "         col_weights, out)\n\n"
             "out (64 x 64 float32) = R @ image @ C.T for banded operators given as (64, K) int64\n"
             "indices and (64, K) float32 weights; image is row-major uint8 (itemsize 1) or\n"
             "float32 (itemsize 4).");

static PyObject *resample(PyObject *self, PyObject *args) {
    Py_buffer image, row_index, row_weights, col_index, col_weights, out;
    Py_ssize_t height, width, itemsize;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnny*y*y*y*w*", &image, &height, &width, &itemsize,
                          &row_index, &row_weights, &col_index, &col_weights, &out))
        return NULL;
    PyObject *result = NULL;
    float *across = NULL, *transposed = NULL;
    Py_ssize_t row_taps = row_weights.len / (SIDE * (Py_ssize_t)sizeof(float));
    Py_ssize_t col_taps = col_weights.len / (SIDE * (Py_ssize_t)sizeof(float));
    if ((itemsize != 1 && itemsize != 4) || height <= 0 || width <= 0 ||
        image.len != height * width * itemsize || out.len != SIDE * SIDE * 4 ||
        row_index.len != row_taps * SIDE * 8 || col_index.len != col_taps * SIDE * 8 ||
        row_taps <= 0 || col_taps <= 0) {
        PyErr_SetString(PyExc_ValueError, "resample: array shapes do not agree");
        goto done;
    }
    if (!in_range(row_index.buf, row_taps * SIDE, height) ||
        !in_range(col_index.buf, col_taps * SIDE, width)) {
        PyErr_SetString(PyExc_ValueError, "resample: operator indices outside the image");
        goto done;
    }
    across = malloc((size_t)(SIDE * width) * sizeof(float));
    transposed = malloc((size_t)(SIDE * width) * sizeof(float));
    if (across == NULL || transposed == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    int avx2 = 0;
#ifdef AVX2_KERNELS
    avx2 = has_avx2();
    if (avx2 && itemsize == 1)
        first_pass_uint8_avx2(image.buf, width, row_index.buf, row_weights.buf, row_taps, across);
    else
#endif
    if (itemsize == 1)
        first_pass_uint8_t(image.buf, width, row_index.buf, row_weights.buf, row_taps, across);
    else
        first_pass_float(image.buf, width, row_index.buf, row_weights.buf, row_taps, across);
#ifdef AVX2_KERNELS
    if (avx2)
        transpose_avx2(across, transposed, width);
    else
#endif
        transpose(across, transposed, width);
    second_pass(transposed, col_index.buf, col_weights.buf, col_taps, out.buf);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    free(across);
    free(transposed);
    PyBuffer_Release(&image);
    PyBuffer_Release(&row_index);
    PyBuffer_Release(&row_weights);
    PyBuffer_Release(&col_index);
    PyBuffer_Release(&col_weights);
    PyBuffer_Release(&out);
    return result;
}

PyDoc_STRVAR(quality_doc,
             "quality(buffer) -> int\n\n"
             "The reference's quality of a 64 x 64 float32 buffer: the sum over both directions\n"
             "of |neighbour difference| * 100 / 255 truncated, // 90, at most 100.");

/* The sum of the truncated steps, down the columns and along the rows: each term is at most
 * 100, so an int32 holds the 8,064 of them, and the loops vectorise. */
VECTOR_CLONES static int32_t quality_sum(const float *b) {
    int32_t sum = 0;
    /* As numpy computes it: float32 |u - v|, times 100, divided by 255, truncated (setup.py
     * builds with -ffp-contract=off: no fused multiply-add may change a rounding). */
    for (Py_ssize_t i = 0; i + 1 < SIDE; i++)
        for (Py_ssize_t j = 0; j < SIDE; j++)
            sum += (int32_t)(fabsf(b[i * SIDE + j] - b[(i + 1) * SIDE + j]) * 100.0f / 255.0f);
    for (Py_ssize_t j = 0; j < SIDE; j++)
        for (Py_ssize_t i = 0; i + 1 < SIDE; i++)
            sum += (int32_t)(fabsf(b[j * SIDE + i] - b[j * SIDE + i + 1]) * 100.0f / 255.0f);
    return sum;
}

static PyObject *quality(PyObject *self, PyObject *args) {
    Py_buffer view;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*", &view)) return NULL;
    if (view.len != SIDE * SIDE * 4) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "quality: expected a 64 x 64 float32 buffer");
        return NULL;
    }
    int32_t q = quality_sum(view.buf) / 90;
    PyBuffer_Release(&view);
    return PyLong_FromLong(q < 100 ? q : 100);
}

#define COEFFS 16

/* coeffs = dct @ buffer @ dct.T for the 16 x 64 DCT rows: the first product a row of 64 sums
 * at a time, the second as dot products along memory, eight partial sums each (the loops
 * vectorise without reordering any one sum's terms across lanes). */
VECTOR_CLONES static void dct_16x16(const float *dct, const float *buffer, float *coeffs) {
    float rows[COEFFS * SIDE];
    for (Py_ssize_t i = 0; i < COEFFS; i++) {
        float sum[SIDE] = {0};
        for (Py_ssize_t k = 0; k < SIDE; k++) {
            const float w = dct[i * SIDE + k];
            const float *line = buffer + k * SIDE;
            for (Py_ssize_t x = 0; x < SIDE; x++) sum[x] += w * line[x];
        }
        memcpy(rows + i * SIDE, sum, sizeof(sum));
    }
    for (Py_ssize_t i = 0; i < COEFFS; i++)
        for (Py_ssize_t j = 0; j < COEFFS; j++) {
            float part[8] = {0};
            for (Py_ssize_t x = 0; x < SIDE; x += 8)
                for (Py_ssize_t l = 0; l < 8; l++)
                    part[l] += rows[i * SIDE + x + l] * dct[j * SIDE + x + l];
            coeffs[i * COEFFS + j] = ((part[0] + part[1]) + (part[2] + part[3])) +
                                     ((part[4] + part[5]) + (part[6] + part[7]));
        }
}

/* The k-th smallest of n values (they are reordered): Hoare's selection. */
static float select_kth(float *v, Py_ssize_t n, Py_ssize_t k) {
    Py_ssize_t lo = 0, hi = n - 1;
    while (lo < hi) {
        const float pivot = v[lo + (hi - lo) / 2];
        Py_ssize_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                const float t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return v[k];
}

PyDoc_STRVAR(hash_doc,
             "hash(buffer, dct) -> (bytes, int)\n\n"
             "PDQ hash (32 bytes, MSB first) and quality of a 64 x 64 float32 buffer, dct being\n"
             "the 16 x 64 float32 DCT rows: bit k = i * 16 + j is set when coefficient (i, j)\n"
             "exceeds the median (the 128th smallest), bit 255 first.");

static PyObject *hash(PyObject *self, PyObject *args) {
    Py_buffer view, dct;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*", &view, &dct)) return NULL;
    if (view.len != SIDE * SIDE * 4 || dct.len != COEFFS * SIDE * 4) {
        PyBuffer_Release(&view);
        PyBuffer_Release(&dct);
        PyErr_SetString(PyExc_ValueError, "hash: expected a 64 x 64 buffer and 16 x 64 rows");
        return NULL;
    }
    float coeffs[COEFFS * COEFFS], sorted[COEFFS * COEFFS];
    dct_16x16(dct.buf, view.buf, coeffs);
    int32_t q = quality_sum(view.buf) / 90;
    PyBuffer_Release(&view);
    PyBuffer_Release(&dct);
    memcpy(sorted, coeffs, sizeof(coeffs));
    const float median = select_kth(sorted, COEFFS * COEFFS, COEFFS * COEFFS / 2 - 1);
    unsigned char bits[32] = {0};
    for (Py_ssize_t p = 0; p < COEFFS * COEFFS; p++) /* output bit p is coefficient 255 - p */
        if (coeffs[COEFFS * COEFFS - 1 - p] > median) bits[p / 8] |= (unsigned char)(0x80 >> (p % 8));
    return Py_BuildValue("(y#l)", (const char *)bits, (Py_ssize_t)32, (long)(q < 100 ? q : 100));
}

static PyMethodDef methods[] = {
    {"resample", resample, METH_VARARGS, resample_doc},
    {"quality", quality, METH_VARARGS, quality_doc},
    {"hash", hash, METH_VARARGS, hash_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pdq", "The fast PDQ's resampling and quality loops, compiled.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pdq(void) { return PyModule_Create(&module); }
