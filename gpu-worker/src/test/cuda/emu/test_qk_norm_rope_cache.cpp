// CPU-emulated check of qk_norm_rope_cache.cu against the loops of ReferenceForward.attention().
#include "cuemu.h"
#include "harness.h"
#include "qk_norm_rope_cache.cu"

static void run(int T, int H, int Hkv, int d, int r, bool qkNorm) {
    const int slotsTotal = T + 5, maxPos = 3 * T + 4, half = r / 2, kvDim = Hkv * d, qkvDim = (H + 2 * Hkv) * d;
    std::vector<float> qkv(T * qkvDim), cosT(maxPos * half), sinT(maxPos * half);
    for (auto &x : qkv) x = h::normal() * 2;
    for (int p = 0; p < maxPos; p++)
        for (int j = 0; j < half; j++) {
            float inv = (float) (1.0 / std::pow(10000.0, 2.0 * j / r));
            cosT[p * half + j] = std::cos(inv * p) * 1.1f;
            sinT[p * half + j] = std::sin(inv * p) * 1.1f;
        }
    std::vector<uint16_t> qn(d), kn(d);
    std::vector<float> qnf(d), knf(d);
    for (int i = 0; i < d; i++) {
        qn[i] = h::to_bf16(h::uniform(0.5f, 1.5f)); qnf[i] = h::from_bf16(qn[i]);
        kn[i] = h::to_bf16(h::uniform(0.5f, 1.5f)); knf[i] = h::from_bf16(kn[i]);
    }
    std::vector<int> pos(T), slot(T);
    std::vector<int> perm(slotsTotal);
    for (int i = 0; i < slotsTotal; i++) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), h::rng);
    for (int t = 0; t < T; t++) { pos[t] = h::randint(0, maxPos - 1); slot[t] = perm[t]; }
    if (T > 2) slot[1] = -1; // padding row: no KV write
    if (T > 3) slot[2] = slotsTotal; // out of the cache: no KV write
    std::vector<float> qOut(T * H * d, NAN);
    std::vector<uint16_t> kc(slotsTotal * kvDim, 0xFFFF), vc(slotsTotal * kvDim, 0xFFFF);
    emu::launch(qk_norm_rope_cache, dim3(T, (H + 2 * Hkv + 3) / 4), dim3(128), 0, qkv.data(), pos.data(), slot.data(), cosT.data(), sinT.data(),
                (const rs::bf16_t *) qn.data(), (const rs::bf16_t *) kn.data(), qOut.data(), (rs::bf16_t *) kc.data(),
                (rs::bf16_t *) vc.data(), T, H, Hkv, d, r, maxPos, slotsTotal, qkNorm ? 1 : 0, 1e-6f);

    // reference
    std::vector<float> qWant(T * H * d), kcWant(slotsTotal * kvDim, NAN), vcWant(slotsTotal * kvDim, NAN);
    std::vector<float> kcGot(slotsTotal * kvDim), vcGot(slotsTotal * kvDim);
    for (int t = 0; t < T; t++) {
        for (int hs = 0; hs < H + Hkv; hs++) {
            float x[512];
            for (int i = 0; i < d; i++) x[i] = qkv[t * qkvDim + hs * d + i];
            if (qkNorm) {
                double ss = 0;
                for (int i = 0; i < d; i++) ss += (double) x[i] * x[i];
                float inv = (float) (1.0 / std::sqrt(ss / d + 1e-6));
                for (int i = 0; i < d; i++) x[i] = (hs < H ? qnf[i] : knf[i]) * (x[i] * inv);
            }
            for (int j = 0; j < half; j++) {
                float a = x[j], b = x[j + half], c = cosT[pos[t] * half + j], s = sinT[pos[t] * half + j];
                x[j] = a * c - b * s;
                x[j + half] = b * c + a * s;
            }
            for (int i = 0; i < d; i++) {
                if (hs < H) qWant[t * H * d + hs * d + i] = x[i];
                else if (slot[t] >= 0 && slot[t] < slotsTotal) kcWant[slot[t] * kvDim + (hs - H) * d + i] = x[i];
            }
        }
        if (slot[t] >= 0 && slot[t] < slotsTotal)
            for (int i = 0; i < kvDim; i++) vcWant[slot[t] * kvDim + i] = qkv[t * qkvDim + (H + Hkv) * d + i];
    }
    for (size_t i = 0; i < kc.size(); i++) {
        kcGot[i] = h::from_bf16(kc[i]);
        vcGot[i] = h::from_bf16(vc[i]);
    }
    char name[128];
    std::snprintf(name, sizeof name, "T=%d H=%d Hkv=%d d=%d r=%d norm=%d", T, H, Hkv, d, r, qkNorm);
    h::check(std::string(name) + " q", qOut.data(), qWant.data(), qOut.size(), 1e-5f, 1e-5f);
    // K/V: bf16 rounding of the reference value (1 bf16 ulp = 2^-8 relative); untouched rows stay NaN (0xFFFF)
    h::check(std::string(name) + " k cache", kcGot.data(), kcWant.data(), kcGot.size(), 1e-6f, 1.0f / 128);
    h::check(std::string(name) + " v cache", vcGot.data(), vcWant.data(), vcGot.size(), 0.f, 1.0f / 256);
}

int main() {
    run(1, 16, 4, 128, 64, true);  // Ring-mini-2.0 decode
    run(7, 16, 4, 128, 128, false); // Ring-lite (v1): full rotary, no norm
    run(33, 6, 2, 40, 20, true);    // d not a multiple of 32
    run(5, 3, 1, 256, 256, true);   // largest head dim
    run(3, 4, 4, 8, 2, true);       // tiny head
    return h::finish();
}
