// CPU-emulated check of sample.cu: greedy must equal Sampler.argmax exactly (ties, NaN, -0.0); random
// draws must stay inside the set Sampler.Random keeps (top-k, then top-p, then min-p, in its order) and
// follow its renormalised probabilities; penalties must equal Sampler.Penalties; logprobs raw[id] − lse.
// Every sampling launch is sample_partials over (C, B) chunks of CHUNK logits, then sample_tokens merging the
// partials, as Sample.sample runs them: two_phase_cases puts ties, NaN, ±inf and an all −inf chunk across chunk
// boundaries, with a vocab that is neither a multiple of the chunk nor of 4 and logits / raw logits at every
// 16-byte phase. Logprobs: within 1e-5 (abs + rel) of a double reference, NaN exactly where it is NaN.
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

// raw[id] − logsumexp(raw) in double, max-subtracted as Logprobs.logSumExp (NaN and +inf give NaN)
static float ref_logprob(const float *raw, int V, int id) {
    float mx = -INFINITY;
    bool nan = false;
    for (int i = 0; i < V; i++) { nan |= std::isnan(raw[i]); mx = std::max(mx, raw[i]); }
    if (nan) return NAN;
    double s = 0;
    for (int i = 0; i < V; i++) s += std::exp((double) raw[i] - mx);
    return (float) (raw[id] - (mx + std::log(s)));
}

struct Params { float temp; int topK; float topP; float minP; };

// sample_partials then sample_tokens, as Sample.sample launches them (raw logits to the partials only with
// logprobs); the workspace starts as garbage, so a partial never written shows
static void launch_sample(const float *logits, const float *raw, int B, int V, const float *temp, const int *topK, const float *topP,
                          const float *minP, const unsigned long long *seeds, const unsigned long long *steps, int *ids, float *lp) {
    const int C = (V + CHUNK - 1) / CHUNK;
    std::vector<SamplePartial> ws((size_t) B * C);
    std::memset((void *) ws.data(), 0xCD, ws.size() * sizeof(SamplePartial));
    emu::launch(sample_partials, dim3(C, B), dim3(PART_THREADS), 0, logits, lp != nullptr ? raw : (const float *) nullptr, temp, ws.data(), B, V);
    emu::launch(sample_tokens, dim3(B), dim3(1024), 0, logits, raw, (const SamplePartial *) ws.data(), temp, topK, topP, minP, seeds, steps, ids,
                lp, B, V);
}

static void run_rows(const std::vector<float> &logits, int B, int V, const std::vector<Params> &ps, const std::vector<unsigned long long> &seeds,
                     const std::vector<unsigned long long> &steps, std::vector<int> &ids, std::vector<float> &lp) {
    std::vector<float> temp(B), topP(B), minP(B);
    std::vector<int> topK(B);
    for (int b = 0; b < B; b++) { temp[b] = ps[b].temp; topK[b] = ps[b].topK; topP[b] = ps[b].topP; minP[b] = ps[b].minP; }
    ids.assign(B, -1);
    lp.assign(B, NAN);
    launch_sample(logits.data(), logits.data(), B, V, temp.data(), topK.data(), topP.data(), minP.data(), seeds.data(), steps.data(), ids.data(),
                  lp.data());
}

/** `data` copied to a buffer at 16-byte phase `phase` floats (0..3): p() is 4·phase bytes past a 16-byte boundary. */
struct Placed {
    std::vector<float> buf;
    size_t at = 0;
    Placed(const std::vector<float> &data, int phase) : buf(data.size() + 8, NAN) {
        while (((reinterpret_cast<uintptr_t>(buf.data() + at) >> 2) & 3) != (uintptr_t) phase) at++;
        std::copy(data.begin(), data.end(), buf.begin() + at);
    }
    const float *p() const { return buf.data() + at; }
};

// greedy rows and logprobs over several chunks: ties, NaN and infinities across chunk boundaries, odd vocab,
// every 16-byte phase of logits and raw logits, with and without logprobs; then one row of the real vocab
static void two_phase_cases() {
    const int V = 3 * CHUNK + 3; // 4 chunks, the last of 3 logits; odd, so rows start at every 16-byte phase
    const int B = 10;
    std::vector<float> raw((size_t) B * V);
    for (auto &v : raw) v = std::round(h::normal() * 6) / 2; // many exact ties
    auto at = [&](int row, int id) -> float & { return raw[(size_t) row * V + id]; };
    at(0, CHUNK + 7) = 50; at(0, 3 * CHUNK + 1) = 50;          // a tie in chunks 1 and 3: the lower id
    at(1, CHUNK - 1) = 50; at(1, CHUNK) = 50;                  // a tie on both sides of a boundary
    at(2, V - 1) = 50; at(2, 2 * CHUNK) = 50;                  // the tail chunk ties the first logit of chunk 2
    at(3, 0) = NAN; at(3, 2 * CHUNK + 5) = 1e30f;              // NaN at id 0 wins
    at(4, CHUNK) = NAN; at(4, V - 1) = NAN; at(4, 2 * CHUNK + 9) = 40; // NaN elsewhere never wins
    std::fill(raw.begin() + 5 * V, raw.begin() + 6 * V, -INFINITY);    // all -inf: id 0, logprob NaN
    std::fill(raw.begin() + 6 * V + CHUNK, raw.begin() + 6 * V + 2 * CHUNK, -INFINITY); // chunk 1 all -inf
    at(7, 3000) = INFINITY; at(7, 5000) = INFINITY;            // +inf twice: the lower id, logprob NaN
    std::fill(raw.begin() + 8 * V, raw.begin() + 9 * V, -3.f);
    at(8, CHUNK + 2) = -0.0f; at(8, 2 * CHUNK + 2) = 0.0f;     // -0.0 ties 0.0 across chunks
    at(9, V - 2) = 1e4f;                                       // the tail chunk's max, a huge gap
    // the logits chosen from: the raw ones with row 6's id 2·CHUNK + 100 raised (penalties would move ids)
    std::vector<float> logits(raw);
    logits[(size_t) 6 * V + 2 * CHUNK + 100] += 100;
    const int wantFixed[B] = {CHUNK + 7, CHUNK - 1, 2 * CHUNK, 0, 2 * CHUNK + 9, 0, 2 * CHUNK + 100, 3000, CHUNK + 2, V - 2};
    std::vector<float> zeros(B, 0.f), ones(B, 1.f);
    std::vector<int> noK(B, 0);
    std::vector<unsigned long long> seeds(B, 1), steps(B, 0);
    for (int variant = 0; variant < 4; variant++) {
        // 0: logits = raw, 16-byte aligned; 1: logits = raw at phase 3; 2: logits (phase 2) and raw (phase 1) apart;
        // 3: as 2 without logprobs
        const bool same = variant < 2;
        const Placed pl(same ? raw : logits, variant == 1 ? 3 : variant == 0 ? 0 : 2);
        const Placed pr(raw, 1);
        const float *dl = pl.p();
        const float *dr = same ? dl : pr.p();
        const std::vector<float> &chosenFrom = same ? raw : logits;
        std::vector<int> ids(B, -1), want(B);
        std::vector<float> lp(B, 12345.f), wantLp(B);
        launch_sample(dl, dr, B, V, zeros.data(), noK.data(), ones.data(), zeros.data(), seeds.data(), steps.data(), ids.data(),
                      variant == 3 ? nullptr : lp.data());
        for (int b = 0; b < B; b++) {
            want[b] = ref_argmax(std::vector<float>(chosenFrom.begin() + (size_t) b * V, chosenFrom.begin() + (size_t) (b + 1) * V));
            wantLp[b] = ref_logprob(raw.data() + (size_t) b * V, V, want[b]);
        }
        char name[160];
        std::snprintf(name, sizeof name, "two-phase greedy V=%d, %s", V,
                      variant == 0 ? "logits = raw, aligned" : variant == 1 ? "logits = raw at phase 3"
                      : variant == 2 ? "logits phase 2, raw phase 1" : "no logprobs");
        if (!same) {
            h::check_eq(std::string(name) + " (expected ids)", want.data(), wantFixed, B);
        }
        h::check_eq(std::string(name) + " ids", ids.data(), want.data(), B);
        if (variant < 3) {
            h::check(std::string(name) + " logprobs", lp.data(), wantLp.data(), B, 1e-5f, 1e-5f);
        } else {
            int untouched = 0;
            for (float v : lp) untouched += v == 12345.f;
            h::check_eq(std::string(name) + ": logprobs left alone", &untouched, &B, 1);
        }
    }
    // one row of the real vocab: 77 chunks, the last of 1536 logits
    const int VR = 157184;
    std::vector<float> big(VR);
    for (auto &v : big) v = h::normal() * 3;
    big[VR - 1] = 20;
    big[CHUNK * 40 + 3] = 20; // tie: the lower id
    int id = -1;
    float lp = NAN;
    launch_sample(big.data(), big.data(), 1, VR, zeros.data(), noK.data(), ones.data(), zeros.data(), seeds.data(), steps.data(), &id, &lp);
    const int wantId = ref_argmax(big);
    h::check_eq("two-phase greedy, V = 157184", &id, &wantId, 1);
    const float wantLp = ref_logprob(big.data(), VR, wantId);
    h::check("two-phase logprob, V = 157184", &lp, &wantLp, 1, 1e-5f, 1e-5f);
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
    // the logprob of each draw, from the merged partials
    std::vector<float> wantLp(n);
    for (int s = 0; s < n; s++) wantLp[s] = ref_logprob(l.data(), V, std::clamp(ids[s], 0, V - 1));
    h::check(std::string(name) + " logprobs", lp.data(), wantLp.data(), n, 1e-5f, 1e-5f);
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
    two_phase_cases();
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
    // the first candidate (z_max) from the partials of several chunks; V odd, so rows start at every phase
    std::vector<float> wide(3 * CHUNK + 3);
    for (auto &v : wide) v = h::normal() * 2.5f;
    random_case("top-k and top-p over 4 chunks", wide, {0.8f, 30, 0.9f, 0.f}, 100);
    wide[2 * CHUNK + 1] = 14.f; wide[3 * CHUNK + 2] = 14.f; // the top logit twice, in chunks 2 and 3
    random_case("min-p over 4 chunks", wide, {1.f, 0, 1.f, 0.3f}, 100);
    penalties_case();
    return h::finish();
}
