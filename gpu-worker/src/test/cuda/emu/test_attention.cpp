// CPU-emulated check of attention_decode.cu (plain and split-K + combine) and attention_prefill.cu
// against the per-(token, head) softmax loop of ReferenceForward.attention() on a shuffled paged cache.
#include "cuemu.h"
#include "harness.h"
#include "attention_decode.cu"
#include "attention_prefill.cu"

struct Cache {
    int B, numBlocks, Hkv, d;
    std::vector<uint16_t> k, v; // (numBlocks·B, Hkv·d)
    std::vector<std::vector<int>> tables;
};

// one (query row, head) of the reference: softmax(q·kᵀ·scale)·v over positions 0..keys-1 of table
static void ref_attend(const Cache &c, const std::vector<int> &table, const float *q, int kvHead, int keys, float scale, float *out) {
    const int kvDim = c.Hkv * c.d;
    std::vector<float> s(keys);
    float mx = -INFINITY;
    for (int p = 0; p < keys; p++) {
        int slot = table[p / c.B] * c.B + p % c.B;
        double dot = 0;
        for (int i = 0; i < c.d; i++) dot += (double) q[i] * h::from_bf16(c.k[slot * kvDim + kvHead * c.d + i]);
        s[p] = (float) dot * scale;
        mx = std::max(mx, s[p]);
    }
    double sum = 0;
    for (int p = 0; p < keys; p++) { s[p] = (float) std::exp(s[p] - mx); sum += s[p]; }
    for (int i = 0; i < c.d; i++) out[i] = 0;
    for (int p = 0; p < keys; p++) {
        int slot = table[p / c.B] * c.B + p % c.B;
        float w = (float) (s[p] / sum);
        for (int i = 0; i < c.d; i++) out[i] += w * h::from_bf16(c.v[slot * kvDim + kvHead * c.d + i]);
    }
}

static Cache make_cache(int B, int Hkv, int d, const std::vector<int> &lens, int maxBlocks) {
    Cache c{B, 0, Hkv, d, {}, {}, {}};
    int need = 0;
    for (int L : lens) need += (L + B - 1) / B;
    c.numBlocks = need + 3;
    std::vector<int> ids(c.numBlocks);
    for (int i = 0; i < c.numBlocks; i++) ids[i] = i;
    std::shuffle(ids.begin(), ids.end(), h::rng);
    int next = 0;
    for (int L : lens) {
        std::vector<int> t(maxBlocks, -7); // unused entries are garbage
        for (int b = 0; b < (L + B - 1) / B; b++) t[b] = ids[next++];
        c.tables.push_back(t);
    }
    c.k.resize((size_t) c.numBlocks * B * Hkv * d);
    c.v.resize(c.k.size());
    for (auto &x : c.k) x = h::to_bf16(h::normal() * 1.5f);
    for (auto &x : c.v) x = h::to_bf16(h::normal());
    return c;
}

/** The bf16 output equals the fp32 output rounded (bit for bit: the same value, rounded once), and out stayed unwritten. */
static void check_bf16(const std::string &what, const std::vector<uint16_t> &got, const std::vector<float> &fp32, const std::vector<float> &untouched) {
    size_t bad = 0, written = 0;
    for (size_t i = 0; i < got.size(); i++) {
        if (got[i] != h::to_bf16(fp32[i])) bad++;
        if (!std::isnan(untouched[i])) written++;
    }
    std::printf("%s %s (%zu of %zu differ, fp32 out written %zu times)\n", bad || written ? "FAIL" : "ok  ", what.c_str(), bad, got.size(), written);
    if (bad || written) h::failures++;
}

static void decode_case(int H, int Hkv, int d, int B, std::vector<int> lens, int kps) {
    const int N = (int) lens.size(), G = H / Hkv;
    int maxLen = 1;
    for (int L : lens) maxLen = std::max(maxLen, L);
    const int maxBlocks = (maxLen + B - 1) / B + 1;
    Cache c = make_cache(B, Hkv, d, lens, maxBlocks);
    std::vector<int> tables(N * maxBlocks);
    for (int s = 0; s < N; s++) std::copy(c.tables[s].begin(), c.tables[s].end(), tables.begin() + s * maxBlocks);
    std::vector<float> q(N * H * d);
    for (auto &x : q) x = h::normal();
    const float scale = (float) (1.0 / std::sqrt((double) d));
    std::vector<float> want(N * H * d);
    for (int s = 0; s < N; s++)
        for (int hh = 0; hh < H; hh++) {
            if (lens[s] <= 0) { std::fill(want.begin() + (s * H + hh) * d, want.begin() + (s * H + hh + 1) * d, 0.f); continue; }
            ref_attend(c, c.tables[s], &q[(s * H + hh) * d], hh / G, lens[s], scale, &want[(s * H + hh) * d]);
        }
    char name[160];
    std::snprintf(name, sizeof name, "decode H=%d Hkv=%d d=%d B=%d N=%d maxLen=%d", H, Hkv, d, B, N, maxLen);
    std::vector<float> out(N * H * d, NAN);
    emu::launch(attention_decode, dim3(Hkv, N), dim3(128), 0, q.data(), (const rs::bf16_t *) c.k.data(),
                (const rs::bf16_t *) c.v.data(), tables.data(), lens.data(), out.data(), (rs::bf16_t *) nullptr, N, H, Hkv, d, B, maxBlocks, scale);
    h::check(name, out.data(), want.data(), out.size(), 2e-5f, 2e-4f);
    // bf16 output instead (fp32 out untouched): the fp32 result rounded, up to one ulp where it sits on a tie
    std::vector<uint16_t> ob(N * H * d, 0xffff);
    std::vector<float> untouched(N * H * d, NAN);
    emu::launch(attention_decode, dim3(Hkv, N), dim3(128), 0, q.data(), (const rs::bf16_t *) c.k.data(),
                (const rs::bf16_t *) c.v.data(), tables.data(), lens.data(), untouched.data(), (rs::bf16_t *) ob.data(), N, H, Hkv, d, B,
                maxBlocks, scale);
    check_bf16(std::string(name) + " bf16 out", ob, out, untouched);

    const int Z = (maxLen + kps - 1) / kps + 1; // one extra, always empty, split
    // the merge counters start at 0 and every launch leaves them at 0 (checked after each launch)
    std::vector<unsigned> done(N * Hkv, 0u);
    auto counters_reset = [&](const std::string &what) {
        for (unsigned v : done) {
            if (v != 0) { std::printf("FAIL %s: a merge counter is %u after the launch, not 0\n", what.c_str(), v); h::failures++; return; }
        }
    };
    std::vector<float> pacc((size_t) N * H * Z * d, NAN), pm(N * H * Z, NAN), pl(N * H * Z, NAN), out2(N * H * d, NAN);
    emu::launch(attention_decode_split, dim3(Hkv, N, Z), dim3(128), 0, q.data(), (const rs::bf16_t *) c.k.data(),
                (const rs::bf16_t *) c.v.data(), tables.data(), lens.data(), out2.data(), (rs::bf16_t *) nullptr, pacc.data(), pm.data(),
                pl.data(), done.data(), N, H, Hkv, d, B, maxBlocks, scale, kps);
    h::check(std::string(name) + " split kps=" + std::to_string(kps), out2.data(), want.data(), out2.size(), 2e-5f, 2e-4f);
    counters_reset(std::string(name) + " split kps=" + std::to_string(kps));

    // few splits, least 1 key: each sequence's own kps = ceil(ctx / Z) rounded up to 32 covers its context
    const int Z2 = 3;
    std::vector<float> qacc((size_t) N * H * Z2 * d, NAN), qm(N * H * Z2, NAN), ql(N * H * Z2, NAN), out3(N * H * d, NAN);
    emu::launch(attention_decode_split, dim3(Hkv, N, Z2), dim3(128), 0, q.data(), (const rs::bf16_t *) c.k.data(),
                (const rs::bf16_t *) c.v.data(), tables.data(), lens.data(), out3.data(), (rs::bf16_t *) nullptr, qacc.data(), qm.data(),
                ql.data(), done.data(), N, H, Hkv, d, B, maxBlocks, scale, 1);
    h::check(std::string(name) + " split Z=3 per-sequence kps", out3.data(), want.data(), out3.size(), 2e-5f, 2e-4f);
    counters_reset(std::string(name) + " split Z=3");
    std::vector<uint16_t> ob3(N * H * d, 0xffff);
    std::vector<float> untouched3(N * H * d, NAN);
    emu::launch(attention_decode_split, dim3(Hkv, N, Z2), dim3(128), 0, q.data(), (const rs::bf16_t *) c.k.data(),
                (const rs::bf16_t *) c.v.data(), tables.data(), lens.data(), untouched3.data(), (rs::bf16_t *) ob3.data(), qacc.data(),
                qm.data(), ql.data(), done.data(), N, H, Hkv, d, B, maxBlocks, scale, 1);
    check_bf16(std::string(name) + " split Z=3 bf16 out", ob3, out3, untouched3);
    counters_reset(std::string(name) + " split Z=3 bf16 out");
}

static void prefill_case(int H, int Hkv, int d, int B, std::vector<int> lens, std::vector<int> newTokens) {
    const int N = (int) lens.size(), G = H / Hkv;
    int maxLen = 1;
    for (int L : lens) maxLen = std::max(maxLen, L);
    const int maxBlocks = (maxLen + B - 1) / B;
    Cache c = make_cache(B, Hkv, d, lens, maxBlocks);
    std::vector<int> tables(N * maxBlocks);
    for (int s = 0; s < N; s++) std::copy(c.tables[s].begin(), c.tables[s].end(), tables.begin() + s * maxBlocks);
    std::vector<int> rowSeq, pos;
    for (int s = 0; s < N; s++)
        for (int i = 0; i < newTokens[s]; i++) { rowSeq.push_back(s); pos.push_back(lens[s] - newTokens[s] + i); }
    rowSeq.push_back(0); pos.push_back(-1); // padding row → zeros
    const int T = (int) rowSeq.size();
    std::vector<float> q(T * H * d);
    for (auto &x : q) x = h::normal();
    const float scale = (float) (1.0 / std::sqrt((double) d));
    std::vector<float> want(T * H * d, 0.f), out(T * H * d, NAN);
    for (int t = 0; t < T; t++)
        for (int hh = 0; hh < H && pos[t] >= 0; hh++)
            ref_attend(c, c.tables[rowSeq[t]], &q[(t * H + hh) * d], hh / G, pos[t] + 1, scale, &want[(t * H + hh) * d]);
    emu::launch(attention_prefill, dim3(Hkv, T), dim3(128), 0, q.data(), (const rs::bf16_t *) c.k.data(),
                (const rs::bf16_t *) c.v.data(), tables.data(), rowSeq.data(), pos.data(), out.data(), (rs::bf16_t *) nullptr, T, H, Hkv, d, B, maxBlocks, scale);
    char name[160];
    std::snprintf(name, sizeof name, "prefill H=%d Hkv=%d d=%d B=%d T=%d", H, Hkv, d, B, T);
    h::check(name, out.data(), want.data(), out.size(), 2e-5f, 2e-4f);
    std::vector<uint16_t> ob(T * H * d, 0xffff);
    std::vector<float> untouched(T * H * d, NAN);
    emu::launch(attention_prefill, dim3(Hkv, T), dim3(128), 0, q.data(), (const rs::bf16_t *) c.k.data(),
                (const rs::bf16_t *) c.v.data(), tables.data(), rowSeq.data(), pos.data(), untouched.data(), (rs::bf16_t *) ob.data(), T, H,
                Hkv, d, B, maxBlocks, scale);
    check_bf16(std::string(name) + " bf16 out", ob, out, untouched);
}

int main() {
    decode_case(16, 4, 128, 16, {1}, 64);                // first token
    decode_case(16, 4, 128, 16, {33, 7, 100}, 32);       // awkward lengths, Ring-mini shape
    decode_case(6, 2, 40, 5, {1, 2, 31, 32, 33, 70}, 13); // d, B, kps not multiples of anything
    decode_case(8, 1, 256, 64, {300}, 128);               // G = 8, d = 256
    decode_case(3, 3, 16, 4, {9, 0}, 4);                  // MHA (G = 1); an empty sequence → 0
    prefill_case(16, 4, 128, 16, {7, 33}, {7, 5});        // whole prompt + a chunk
    prefill_case(6, 2, 40, 5, {40, 1}, {40, 1});
    prefill_case(8, 1, 256, 8, {65}, {65});
    return h::finish();
}
