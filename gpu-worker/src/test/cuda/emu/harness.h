// harness.h — helpers for the CPU-emulated kernel checks (see cuemu.h): seeded random inputs, bf16
// conversion, and a check that reports max abs / rel error and the first bad index, like the GPU tests.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace h {
inline std::mt19937_64 rng(12345);
inline float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }
inline float normal() { return std::normal_distribution<float>(0.f, 1.f)(rng); }
inline int randint(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); } // inclusive

inline uint16_t to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t) ((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t) (u >> 16);
}
inline float from_bf16(uint16_t b) {
    uint32_t u = (uint32_t) b << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline float round_bf16(float f) { return from_bf16(to_bf16(f)); }

inline int failures = 0;
inline const int line_buffered = std::setvbuf(stdout, nullptr, _IOLBF, 0); // progress shows through pipes

/** |got - want| <= atol + rtol·|want| everywhere (NaN in got fails). */
inline bool check(const std::string &what, const float *got, const float *want, size_t n, float atol, float rtol) {
    double max_abs = 0, max_rel = 0;
    long first_bad = -1;
    for (size_t i = 0; i < n; i++) {
        double d = std::fabs((double) got[i] - want[i]);
        bool bad = !(d <= atol + rtol * std::fabs(want[i])) || std::isnan(got[i]) != std::isnan(want[i]);
        if (std::isnan(got[i]) && std::isnan(want[i])) bad = false, d = 0;
        if (bad && first_bad < 0) first_bad = (long) i;
        if (d > max_abs) max_abs = d;
        if (want[i] != 0 && d / std::fabs(want[i]) > max_rel) max_rel = d / std::fabs(want[i]);
    }
    if (first_bad >= 0) {
        std::printf("FAIL %s: max abs %.3g max rel %.3g first bad [%ld] got %.8g want %.8g\n", what.c_str(), max_abs, max_rel,
                    first_bad, got[first_bad], want[first_bad]);
        failures++;
        return false;
    }
    std::printf("ok   %s (max abs %.3g, max rel %.3g)\n", what.c_str(), max_abs, max_rel);
    return true;
}

inline bool check_eq(const std::string &what, const int *got, const int *want, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            std::printf("FAIL %s: first bad [%zu] got %d want %d\n", what.c_str(), i, got[i], want[i]);
            failures++;
            return false;
        }
    }
    std::printf("ok   %s\n", what.c_str());
    return true;
}

/**
 * A random case of y (+)= x·Wᵀ on bf16 values: x (T, K) and w (N, K) start `offset` elements into their
 * vectors (to misalign them); y holds the accumulate input (NaN otherwise), want the reference in double.
 */
struct MatmulCase {
    std::vector<uint16_t> x, w;
    std::vector<float> y, want;
};

inline MatmulCase matmul_case(int T, int N, int K, bool accumulate, int offset) {
    MatmulCase m{std::vector<uint16_t>(T * K + offset), std::vector<uint16_t>(N * K + offset), std::vector<float>(T * N),
                 std::vector<float>(T * N)};
    for (auto &b : m.x) b = to_bf16(normal());
    for (auto &b : m.w) b = to_bf16(normal() * 0.05f);
    for (auto &v : m.y) v = accumulate ? normal() : NAN;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < N; r++) {
            double s = 0;
            for (int c = 0; c < K; c++) s += (double) from_bf16(m.x[offset + t * K + c]) * from_bf16(m.w[offset + r * K + c]);
            m.want[t * N + r] = (float) s + (accumulate ? m.y[t * N + r] : 0.f);
        }
    return m;
}

inline int finish() {
    std::printf(failures ? "%d FAILED\n" : "ALL OK\n", failures);
    return failures ? 1 : 0;
}
/** moe_experts.cu's group plan: it lists every expert that has slots, ascending, each with exactly its slots. */
inline void check_plan(const std::string &what, const std::vector<int> &plan, const std::vector<int> &ids, int E) {
    std::vector<std::set<int>> want(E);
    for (int s = 0; s < (int) ids.size(); s++) {
        if (ids[s] >= 0 && ids[s] < E) want[ids[s]].insert(s);
    }
    const int A = plan[0];
    int a = 0;
    bool ok = true;
    int grouped = 0;
    int tiles = 0;
    for (int e = 0; e < E; e++) {
        if (want[e].empty()) continue;
        if (a >= A || plan[1 + a] != e) { ok = false; break; }
        const int b = plan[1 + E + a], n = plan[2 + E + a] - b;
        std::set<int> got(plan.begin() + 3 + 3 * E + b, plan.begin() + 3 + 3 * E + b + n);
        if (b != grouped || got != want[e] || n != (int) want[e].size() || plan[2 + 2 * E + a] != tiles) { ok = false; break; }
        grouped += n;
        tiles += (n + 63) / 64;
        a++;
    }
    ok = ok && a == A && plan[1 + E + A] == grouped && plan[2 + 2 * E + A] == tiles;
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", (what + " plan").c_str());
    if (!ok) failures++;
}

} // namespace h
