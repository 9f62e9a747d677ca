// CPU-emulated check of fill_random.cu: values independent of the grid, SplitMix64 as
// java.util.SplittableRandom computes it, range and mean.
#include "cuemu.h"
#include "harness.h"
#include "fill_random.cu"

int main() {
    const long long n = 5000;
    const unsigned long long seed = 42;
    std::vector<float> a(n, NAN), b(n, NAN);
    emu::launch(fill_random_f32, dim3(3), dim3(256), 0, a.data(), n, seed, 0.5f);
    emu::launch(fill_random_f32, dim3(20), dim3(256), 0, b.data(), n, seed, 0.5f);
    h::check("fill_random_f32 same values for any grid", a.data(), b.data(), n, 0.f, 0.f);
    // java.util.SplittableRandom(42).nextLong() x3, and the value each gives
    const unsigned long long java[3] = {0xbdd732262feb6e95ull, 0x28efe333b266f103ull, 0x47526757130f9f52ull};
    std::vector<float> want(3);
    for (int i = 0; i < 3; i++) want[i] = (float) ((int) (java[i] >> 40) - (1 << 23)) * 0x1p-23f * 0.5f;
    h::check("fill_random_f32 = SplittableRandom(42)", a.data(), want.data(), 3, 0.f, 0.f);
    double mean = 0, lo = 1, hi = -1;
    for (float v : a) { mean += v; lo = std::min(lo, (double) v); hi = std::max(hi, (double) v); }
    mean /= n;
    float stats[3] = {(float) mean, (float) lo, (float) hi}, bounds[3] = {0.f, -0.5f, 0.5f};
    h::check("fill_random_f32 mean ~0, range [-0.5, 0.5]", stats, bounds, 3, 0.02f, 0.f);
    std::vector<uint16_t> c(n, 0xFFFF);
    emu::launch(fill_random_bf16, dim3(7), dim3(256), 0, (rs::bf16_t *) c.data(), n, seed, 0.5f);
    std::vector<float> cf(n), aw(n);
    for (long long i = 0; i < n; i++) { cf[i] = h::from_bf16(c[i]); aw[i] = h::round_bf16(a[i]); }
    h::check("fill_random_bf16 = bf16(fill_random_f32)", cf.data(), aw.data(), n, 0.f, 0.f);
    return h::finish();
}
