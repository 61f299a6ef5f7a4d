/* The hand-written baseline for a**2 + b**2 + 2*a*b: one OpenMP-parallel, vectorisable pass
   over contiguous arrays. Built by benchmarks/rivals.py with gcc -O3 -march=native -fopenmp. */

void poly_f64(const double *restrict a, const double *restrict b, double *restrict out, long n)
{
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i)
        out[i] = a[i] * a[i] + b[i] * b[i] + 2.0 * a[i] * b[i];
}

void poly_f32(const float *restrict a, const float *restrict b, float *restrict out, long n)
{
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i)
        out[i] = a[i] * a[i] + b[i] * b[i] + 2.0f * a[i] * b[i];
}
