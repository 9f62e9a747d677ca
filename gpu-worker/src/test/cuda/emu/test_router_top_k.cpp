// CPU-emulated check of router_top_k.cu against ports of GroupLimitedSigmoidRouter / SoftmaxTopKRouter,
// including exact ties (duplicated gate rows give bit-identical logits: the lower expert id must win).
#include "cuemu.h"
#include "harness.h"
#include "router_top_k.cu"

// Router.topIndices
static std::vector<int> topIndices(const std::vector<float> &v, int k, const std::vector<bool> *allowed) {
    std::vector<int> out(k);
    std::vector<bool> taken(v.size());
    for (int i = 0; i < k; i++) {
        int best = -1;
        for (int j = 0; j < (int) v.size(); j++) {
            if (taken[j] || (allowed && !(*allowed)[j])) continue;
            if (best < 0 || v[j] > v[best]) best = j;
        }
        taken[best] = true;
        out[i] = best;
    }
    return out;
}

struct Route { std::vector<int> ids; std::vector<float> w; std::vector<float> choice; };

static Route sigmoidRoute(const float *logits, int E, int K, int nGroup, int topkGroup, float scale, const std::vector<float> &bias) {
    std::vector<float> scores(E), biased(E);
    for (int e = 0; e < E; e++) { scores[e] = (float) (1.0 / (1.0 + std::exp(-(double) logits[e]))); biased[e] = scores[e] + bias[e]; }
    int per = E / nGroup;
    std::vector<float> gs(nGroup);
    for (int g = 0; g < nGroup; g++) {
        float first = -INFINITY, second = -INFINITY;
        for (int e = g * per; e < (g + 1) * per; e++) {
            float s = biased[e];
            if (s > first) { second = first; first = s; } else if (s > second) second = s;
        }
        gs[g] = per >= 2 ? first + second : first;
    }
    auto kept = topIndices(gs, topkGroup, nullptr);
    std::vector<bool> allowed(E);
    for (int g : kept) for (int e = g * per; e < (g + 1) * per; e++) allowed[e] = true;
    Route r{topIndices(biased, K, &allowed), std::vector<float>(K), biased};
    float sum = 0;
    for (int k = 0; k < K; k++) { r.w[k] = scores[r.ids[k]]; sum += r.w[k]; }
    if (K > 1) for (int k = 0; k < K; k++) r.w[k] = r.w[k] / (sum + 1e-20f);
    for (int k = 0; k < K; k++) r.w[k] *= scale;
    return r;
}

static Route softmaxRoute(const float *logits, int E, int K, bool norm) {
    std::vector<float> p(logits, logits + E);
    float mx = -INFINITY;
    for (float v : p) mx = std::max(mx, v);
    double sum = 0;
    for (auto &v : p) { v = (float) std::exp(v - mx); sum += v; }
    float inv = (float) (1.0 / sum);
    for (auto &v : p) v *= inv;
    Route r{topIndices(p, K, nullptr), std::vector<float>(K), p};
    double s = 0;
    for (int k = 0; k < K; k++) { r.w[k] = p[r.ids[k]]; s += r.w[k]; }
    if (norm && K > 1) for (int k = 0; k < K; k++) r.w[k] = (float) (r.w[k] / s);
    return r;
}

static void run(int T, int D, int E, int K, int nGroup, int topkGroup, int scoring, bool useBias, bool bf16Logits, bool dupRows,
                bool withPlan = true) {
    std::vector<float> x(T * D);
    for (auto &v : x) v = h::normal();
    std::vector<uint16_t> gate(E * D);
    for (auto &v : gate) v = h::to_bf16(h::normal() * 0.05f);
    if (dupRows) // experts 2·j+1 copy 2·j in the second half; whole group 1 copies group 0 (exact ties)
        for (int e = 0; e < E; e++) {
            int src = -1;
            if (e >= E / 2 && e % 2 == 1) src = e - 1;
            if (nGroup > 1 && e / (E / nGroup) == 1) src = e - E / nGroup;
            if (src >= 0) std::copy(gate.begin() + src * D, gate.begin() + (src + 1) * D, gate.begin() + e * D);
        }
    std::vector<float> bias(E, 0.f);
    if (useBias) for (auto &b : bias) b = h::uniform(-0.05f, 0.05f);
    if (useBias && dupRows && nGroup > 1) for (int e = E / nGroup; e < 2 * E / nGroup; e++) bias[e] = bias[e - E / nGroup];
    if (useBias && dupRows) for (int e = E / 2; e < E; e++) if (e % 2 == 1) bias[e] = bias[e - 1];
    std::vector<int> ids(T * K, -1);
    std::vector<float> w(T * K, NAN);
    std::vector<float> raw(T * E); // the gate projection's fp32 logits, the kernel's input
    for (int t = 0; t < T; t++)
        for (int e = 0; e < E; e++) {
            double acc = 0;
            for (int i = 0; i < D; i++) acc += (double) h::from_bf16(gate[e * D + i]) * x[t * D + i];
            raw[t * E + e] = (float) acc;
        }
    // the plan the last block builds; `done` starts at 0 and must be 0 again afterwards
    std::vector<int> plan(3 + 3 * E + T * K, 0x7fffffff);
    unsigned done = 0;
    emu::launch(router_top_k, dim3(T), dim3(256), 0, (const float *) raw.data(), (const float *) bias.data(),
                ids.data(), w.data(), withPlan ? plan.data() : nullptr, withPlan ? &done : nullptr, T, E, K, nGroup, topkGroup, scoring,
                useBias ? 1 : 0, bf16Logits ? 1 : 0, 1, 2.5f);
    int mismatched = 0, nearTies = 0;
    std::vector<float> wantW(T * K), gotW(T * K);
    for (int t = 0; t < T; t++) {
        std::vector<float> logits(E);
        for (int e = 0; e < E; e++) logits[e] = bf16Logits ? h::round_bf16(raw[t * E + e]) : raw[t * E + e];
        if (dupRows) // make the reference see the exact ties the kernel sees
            for (int e = 0; e < E; e++) {
                if (nGroup > 1 && e / (E / nGroup) == 1) logits[e] = logits[e - E / nGroup];
                if (e >= E / 2 && e % 2 == 1 && !(nGroup > 1 && e / (E / nGroup) == 1)) logits[e] = logits[e - 1];
            }
        Route r = scoring == 0 ? sigmoidRoute(logits.data(), E, K, nGroup, topkGroup, 2.5f, bias) : softmaxRoute(logits.data(), E, K, true);
        bool same = true;
        for (int k = 0; k < K; k++) same &= r.ids[k] == ids[t * K + k];
        if (!same) {
            // allowed only when the reference's choice values are within noise of each other there
            bool near = false;
            for (int k = 0; k < K; k++) {
                int a = r.ids[k], b = ids[t * K + k];
                if (a != b && b >= 0 && b < E && std::fabs(r.choice[a] - r.choice[b]) < 1e-5f * std::max(1.f, std::fabs(r.choice[a]))) near = true;
            }
            if (near) { nearTies++; continue; }
            if (mismatched++ < 3) {
                std::printf("  token %d: want", t);
                for (int k = 0; k < K; k++) std::printf(" %d", r.ids[k]);
                std::printf(" got");
                for (int k = 0; k < K; k++) std::printf(" %d", ids[t * K + k]);
                std::printf("\n");
            }
        }
        for (int k = 0; k < K; k++) { wantW[t * K + k] = r.w[k]; gotW[t * K + k] = w[t * K + k]; }
    }
    char name[160];
    std::snprintf(name, sizeof name, "router T=%d D=%d E=%d K=%d G=%d/%d %s bias=%d bf16=%d dup=%d", T, D, E, K, topkGroup, nGroup,
                  scoring == 0 ? "sigmoid" : "softmax", useBias, bf16Logits, dupRows);
    if (mismatched) { std::printf("FAIL %s: %d tokens route differently\n", name, mismatched); h::failures++; }
    h::check(std::string(name) + " weights (near ties skipped: " + std::to_string(nearTies) + ")", gotW.data(), wantW.data(), gotW.size(), 2e-6f, 1e-4f);
    if (withPlan) {
        h::check_plan(name, plan, ids, E);
        if (done != 0) { std::printf("FAIL %s: the block counter is %u after the launch, not 0\n", name, done); h::failures++; }
    } else if (plan[0] != 0x7fffffff) {
        std::printf("FAIL %s: a plan was written without a plan buffer\n", name);
        h::failures++;
    }
}

int main() {
    run(7, 2048, 256, 8, 8, 4, 0, true, false, false);  // Ring-mini-2.0
    run(33, 100, 256, 8, 8, 4, 0, true, false, true);   // exact ties between experts and between groups
    run(5, 77, 48, 5, 6, 2, 0, true, false, true);      // E, D not multiples of 32
    run(3, 64, 16, 1, 1, 1, 0, false, false, false);    // one group, K = 1 (no renormalisation)
    run(9, 33, 32, 3, 32, 3, 0, true, false, false);    // one expert per group (group score = top-1), G = 32
    run(300, 16, 256, 8, 8, 4, 0, true, false, false);  // a prefill chunk: 300 blocks, the plan from 2,400 slots
    run(7, 2048, 64, 6, 1, 1, 1, false, true, false);   // Ring-lite: softmax over bf16 logits
    run(11, 65, 64, 6, 1, 1, 1, false, false, true);    // softmax with exact ties
    run(2, 31, 3, 3, 1, 1, 1, false, false, false);     // K = E
    run(4, 64, 256, 8, 8, 4, 0, true, false, false, false); // no plan buffer: the ids only (moe_group plans)
    return h::finish();
}
