// CPU-emulated check of sample.cu: greedy must equal Sampler.argmax exactly (ties, NaN, -0.0); random
// draws must stay inside the set Sampler.Random keeps (top-k, then top-p, then min-p, in its order) and
// follow its renormalised probabilities; penalties must equal Sampler.Penalties; logprobs raw[id] − lse.
#include "cuemu.h"
#include "harness.h"
#include "sample.cu"

static int ref_argmax(const std::vector<float> &l) {
    int best = 0;
    for (int i = 1; i < (int) l.size(); i++) if (l[i] > l[best]) best = i;
    return best;
}

// Sampler.Random up to the draw: the kept ids (in order) and their renormalised probabilities
static void ref_kept(const std::vector<float> &l, double T, int topK, double topP, double minP, std::vector<int> &ids, std::vector<double> &probs) {
    int V = (int) l.size();
    std::vector<int> order(V);
    for (int i = 0; i < V; i++) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b]; });
    int keep = topK > 0 ? std::min(topK, V) : V;
    std::vector<double> p(keep);
    double mx = l[order[0]] / T, sum = 0;
    for (int i = 0; i < keep; i++) { p[i] = std::exp(l[order[i]] / T - mx); sum += p[i]; }
    for (auto &v : p) v /= sum;
    double cum = 0;
    int cut = keep;
    for (int i = 0; i < keep; i++) { cum += p[i]; if (cum >= topP) { cut = i + 1; break; } }
    if (minP > 0) { double floor = minP * p[0]; int c = 1; while (c < cut && p[c] >= floor) c++; cut = c; }
    double total = 0;
    for (int i = 0; i < cut; i++) total += p[i];
    ids.assign(order.begin(), order.begin() + cut);
    probs.resize(cut);
    for (int i = 0; i < cut; i++) probs[i] = p[i] / total;
}

struct Params { float temp; int topK; float topP; float minP; };

static void run_rows(const std::vector<float> &logits, int B, int V, const std::vector<Params> &ps, const std::vector<unsigned long long> &seeds,
                     const std::vector<unsigned long long> &steps, std::vector<int> &ids, std::vector<float> &lp) {
    std::vector<float> temp(B), topP(B), minP(B);
    std::vector<int> topK(B);
    for (int b = 0; b < B; b++) { temp[b] = ps[b].temp; topK[b] = ps[b].topK; topP[b] = ps[b].topP; minP[b] = ps[b].minP; }
    ids.assign(B, -1);
    lp.assign(B, NAN);
    emu::launch(sample_tokens, dim3(B), dim3(1024), 0, logits.data(), logits.data(), (const float *) temp.data(), (const int *) topK.data(),
                (const float *) topP.data(), (const float *) minP.data(), seeds.data(), steps.data(), ids.data(), lp.data(), B, V);
}

static void greedy_cases() {
    std::vector<std::vector<float>> rows;
    int V = 3001;
    for (int r = 0; r < 6; r++) {
        std::vector<float> l(V);
        for (auto &v : l) v = std::round(h::normal() * 4) / 2; // many exact ties
        rows.push_back(l);
    }
    rows[1][0] = NAN;                                   // NaN at id 0 wins
    rows[2][5] = NAN; rows[2][7] = 1e30f;               // NaN elsewhere never wins
    for (auto &v : rows[3]) v = -INFINITY;              // all -inf → 0
    rows[4].assign(V, 0.f); rows[4][9] = -0.0f;         // -0 == 0 → lowest id
    rows[4][0] = -0.0f;
    rows[5][V - 1] = 100.f;                             // the last id
    int B = (int) rows.size();
    std::vector<float> flat;
    for (auto &r : rows) flat.insert(flat.end(), r.begin(), r.end());
    std::vector<Params> ps(B, {0.f, 0, 1.f, 0.f});
    std::vector<unsigned long long> seeds(B, 1), steps(B, 0);
    std::vector<int> ids;
    std::vector<float> lp;
    run_rows(flat, B, V, ps, seeds, steps, ids, lp);
    std::vector<int> want(B);
    for (int b = 0; b < B; b++) want[b] = ref_argmax(rows[b]);
    h::check_eq("greedy argmax (ties, NaN, -inf, -0.0)", ids.data(), want.data(), B);
    // logprob of row 0 and 5
    std::vector<float> got{lp[0], lp[5]}, wl;
    for (int b : {0, 5}) {
        float mx = -INFINITY;
        for (float v : rows[b]) mx = std::max(mx, v);
        double s = 0;
        for (float v : rows[b]) s += std::exp((double) v - mx);
        wl.push_back((float) (rows[b][want[b]] - (mx + std::log(s))));
    }
    h::check("greedy logprob", got.data(), wl.data(), 2, 1e-5f, 1e-5f);
}

// draws `n` samples (as n rows with steps 0..n-1) and checks membership and frequencies
static void random_case(const char *what, const std::vector<float> &l, Params p, int n) {
    int V = (int) l.size();
    std::vector<float> flat;
    for (int i = 0; i < n; i++) flat.insert(flat.end(), l.begin(), l.end());
    std::vector<Params> ps(n, p);
    std::vector<unsigned long long> seeds(n, 0x1234567890abcdefull), steps(n);
    for (int i = 0; i < n; i++) steps[i] = i;
    std::vector<int> ids;
    std::vector<float> lp;
    run_rows(flat, n, V, ps, seeds, steps, ids, lp);
    std::vector<int> keptIds;
    std::vector<double> probs;
    ref_kept(l, p.temp, p.topK, p.topP, p.minP, keptIds, probs);
    std::vector<int> hits(keptIds.size(), 0);
    int outside = 0, firstOutside = -1;
    for (int s = 0; s < n; s++) {
        auto it = std::find(keptIds.begin(), keptIds.end(), ids[s]);
        if (it == keptIds.end()) { outside++; if (firstOutside < 0) firstOutside = ids[s]; } else hits[it - keptIds.begin()]++;
    }
    double worst = 0;
    for (size_t i = 0; i < keptIds.size(); i++) {
        double e = probs[i] * n, sd = std::sqrt(std::max(1e-9, n * probs[i] * (1 - probs[i])));
        worst = std::max(worst, std::fabs(hits[i] - e) / std::max(sd, 1.0));
    }
    char name[200];
    std::snprintf(name, sizeof name, "random %s (T=%.2f k=%d p=%.2f minp=%.2f): kept %zu, %d draws", what, p.temp, p.topK, p.topP, p.minP,
                  keptIds.size(), n);
    if (outside || worst > 5) {
        std::printf("FAIL %s: %d draws outside the kept set (first id %d), worst frequency deviation %.1f sd\n", name, outside, firstOutside, worst);
        h::failures++;
    } else {
        std::printf("ok   %s (worst deviation %.1f sd)\n", name, worst);
    }
    // determinism: the same seed and step give the same token
    std::vector<int> ids2;
    run_rows(std::vector<float>(flat.begin(), flat.begin() + 3 * V), 3, V, std::vector<Params>(3, p),
             std::vector<unsigned long long>(3, 0x1234567890abcdefull), {0, 1, 2}, ids2, lp);
    h::check_eq(std::string(name) + " replay", ids2.data(), ids.data(), 3);
}

static void penalties_case() {
    const int B = 3, S = 4, V = 333;
    std::vector<float> logits(B * V);
    for (auto &v : logits) v = h::normal() * 3;
    std::vector<unsigned char> mask(S * V, 0);
    std::vector<int> counts(S * V, 0);
    for (auto &m : mask) m = h::randint(0, 9) == 0;
    for (auto &c : counts) c = h::randint(0, 7) == 0 ? h::randint(1, 3) : 0;
    std::vector<int> rowsOf{2, -1, 0};
    std::vector<float> rep{1.3f, 1.5f, 0.8f}, pres{0.5f, 1.f, -0.25f}, freq{0.25f, 1.f, 0.5f};
    std::vector<float> out(B * V, NAN);
    emu::launch(apply_penalties, dim3((V + 255) / 256, B), dim3(256), 0, (const float *) logits.data(), out.data(), (const int *) rowsOf.data(),
                (const unsigned char *) mask.data(), (const int *) counts.data(), (const float *) rep.data(), (const float *) pres.data(),
                (const float *) freq.data(), B, V);
    std::vector<float> want(logits);
    for (int b = 0; b < B; b++) {
        int r = rowsOf[b];
        if (r < 0) continue;
        for (int i = 0; i < V; i++) {
            float &v = want[b * V + i];
            int c = counts[r * V + i];
            if ((mask[r * V + i] || c > 0) && rep[b] != 1) v = v > 0 ? (float) (v / (double) rep[b]) : (float) (v * (double) rep[b]);
            if (c > 0) v -= (float) (pres[b] + (double) freq[b] * c);
        }
    }
    h::check("apply_penalties", out.data(), want.data(), out.size(), 1e-6f, 1e-6f);
    std::vector<int> sampled{5, 7, V - 1};
    std::vector<int> before(counts);
    emu::launch(count_tokens, dim3(1), dim3(256), 0, (const int *) sampled.data(), (const int *) rowsOf.data(), counts.data(), B, V);
    before[2 * V + 5]++;
    before[0 * V + V - 1]++;
    h::check_eq("count_tokens", counts.data(), before.data(), counts.size());
}

int main() {
    greedy_cases();
    std::vector<float> l(1500);
    for (auto &v : l) v = h::normal() * 2.5f;
    random_case("plain", std::vector<float>(l.begin(), l.begin() + 40), {1.f, 0, 1.f, 0.f}, 200);
    random_case("top-k", l, {0.7f, 5, 1.f, 0.f}, 200);
    random_case("top-p", l, {0.6f, 0, 0.9f, 0.f}, 200);
    random_case("min-p", l, {1.f, 0, 1.f, 0.2f}, 200);
    random_case("all", l, {1.3f, 20, 0.8f, 0.05f}, 200);
    std::vector<float> ties(300, 0.f);
    for (int i = 0; i < 300; i++) ties[i] = (float) (i % 4 == 0 ? 2 : 1); // 75 tied at the top, then 225 tied
    random_case("top-k boundary inside a tie", ties, {1.f, 10, 1.f, 0.f}, 200);
    random_case("top-p boundary inside a tie", ties, {1.f, 0, 0.05f, 0.f}, 200);
    penalties_case();
    return h::finish();
}
