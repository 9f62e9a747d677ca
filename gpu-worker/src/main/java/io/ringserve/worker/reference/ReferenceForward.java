package io.ringserve.worker.reference;

import static io.ringserve.worker.reference.ReferenceOps.add;
import static io.ringserve.worker.reference.ReferenceOps.matmul;
import static io.ringserve.worker.reference.ReferenceOps.rmsnorm;
import static io.ringserve.worker.reference.ReferenceOps.rope;
import static io.ringserve.worker.reference.ReferenceOps.siluMul;
import static io.ringserve.worker.reference.ReferenceOps.softmax;

import io.ringserve.model.config.ModelConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * The BailingMoe forward pass in float32 on the CPU, step for step as {@code modeling_bailing_moe_v2.py}
 * (docs/MODEL.md §3) and, for v1 checkpoints, {@code modeling_bailing_moe.py} (MODEL-V1.md §4). It is the
 * oracle for the CUDA engine, which calls its kernels under the same step names in the same order.
 *
 * <p>One pass serves both versions; they differ in named pieces chosen from the config: the {@link Router}
 * (V2 sigmoid / group-limited / expert bias, v1 softmax top-k), the RoPE width ({@code rotaryDim}: partial
 * in V2, every head dim in v1), whether QK-norm runs ({@code useQkNorm}), dense first layers
 * ({@code first_k_dense_replace}), and v1's {@code norm_head}, folded into the lm_head at load
 * ({@link ModelWeights}). The shared experts are one fused SwiGLU MLP in both.
 *
 * <p>One call runs one step: for each sequence in the batch, T_i new tokens (a whole prompt, a chunk of
 * it, or one decoded token) at positions {@code start ..} against that sequence's KV ({@link SequenceKv}:
 * a contiguous {@link KvCache} or a block table of the {@link PagedKvCache}).
 *
 * <p>The pass is three public pieces, {@link #embed} → {@link #layers} → {@link #logits}, and
 * {@link #forward(List, ForwardTrace)} is exactly their composition. A shard holding a {@link LayerRange}
 * (a pipeline stage) runs the same pieces: {@code embed} on the first, its {@code layers} on the (T, D)
 * residual stream it receives, {@code logits} on the last. Same code, same order, float32 in between: a
 * chain of shards computes bit for bit what the whole model computes.
 *
 * <p>Legend: T = new tokens, P = cached + new positions, D = hidden, H = query heads, Hkv = KV heads,
 * d = head dim, r = rotary dims, E = experts, K = experts per token, V = vocab.
 */
public final class ReferenceForward {
    private final ModelWeights weights;
    private final ModelConfig config;
    private final LayerRange range;
    private final RotaryEmbedding rotary;
    private final Router router;

    public ReferenceForward(ModelWeights weights) {
        this.weights = weights;
        this.config = weights.config();
        this.range = weights.range();
        this.rotary = new RotaryEmbedding(config);
        this.router = Router.of(config);
    }

    public ModelConfig config() {
        return config;
    }

    /** The decoder layers this forward holds (all of them for a whole model). */
    public LayerRange layerRange() {
        return range;
    }

    /** Longest prompt + generated tokens one sequence may have (YaRN-extended when configured). */
    public int contextLength() {
        return config.contextLength();
    }

    /** A cache of the held layers sized for this model's context. */
    public KvCache newCache() {
        return new KvCache(config, range, contextLength());
    }

    /**
     * One sequence's share of a step: {@code tokens} at positions {@code start ..}, K/V written to and read
     * from {@code kv}, which must already hold room for {@code start + tokens.length} positions.
     *
     * @param allLogits true: logits for every token; false: only for the last one
     */
    public record Chunk(int[] tokens, int start, SequenceKv kv, boolean allLogits) {
        /** The chunk's rows without their token ids: what {@link #layers} and {@link #logits} read. */
        public Span span() {
            return new Span(tokens.length, start, kv, allLogits);
        }
    }

    /**
     * One sequence's rows of the (T, D) residual stream in a step: {@code length} rows at positions
     * {@code start ..}, K/V in {@code kv}.
     *
     * @param allLogits true: logits for every row; false: only for the last one
     */
    public record Span(int length, int start, SequenceKv kv, boolean allLogits) {
        public Span {
            if (length < 1) {
                throw new IllegalArgumentException("a chunk has no tokens");
            }
        }
    }

    /**
     * Runs {@code tokens} of one sequence through the model and appends their K/V to its cache.
     *
     * @param allLogits true: logits for every token (T, V); false: only for the last token (1, V)
     * @param trace     tap points, or null
     * @return float32 logits, row-major
     */
    public float[] forward(KvCache cache, int[] tokens, boolean allLogits, ForwardTrace trace) {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("no tokens to run");
        }
        cache.reserve(tokens.length);
        float[] logits = forward(List.of(new Chunk(tokens, cache.length(), cache, allLogits)), trace)[0];
        cache.advance(tokens.length);
        return logits;
    }

    /**
     * One step of the whole model over several sequences: the tokens of all chunks form one (T, D) activation
     * so every weight row is read once per step; attention stays per sequence. A token's result does not
     * depend on what else is in the batch (each output element is computed by the same operations in the
     * same order), so any split of a batch into smaller ones gives the same bits.
     *
     * @return per chunk, its logits ((T_i or 1), V)
     */
    public float[][] forward(List<Chunk> batch, ForwardTrace trace) {
        float[] x = embed(batch, trace); // (T, D)
        List<Span> spans = new ArrayList<>(batch.size());
        for (Chunk c : batch) {
            spans.add(c.span());
        }
        layers(x, spans, trace);
        return logits(x, spans);
    }

    /**
     * The first shard's entry: the rows of word_embeddings for the tokens of all chunks, in chunk order.
     *
     * @return (T, D) the residual stream
     */
    public float[] embed(List<Chunk> batch, ForwardTrace trace) {
        if (weights.wordEmbeddings() == null) {
            throw new IllegalStateException("this shard holds layers " + range + ", not the word embeddings (only the first shard does)");
        }
        int tokenCount = 0;
        for (Chunk c : batch) {
            if (c.tokens().length == 0) {
                throw new IllegalArgumentException("a chunk has no tokens");
            }
            for (int id : c.tokens()) {
                if (id < 0 || id >= config.vocabSize()) {
                    throw new IllegalArgumentException("token id " + id + " is outside the vocabulary [0, " + config.vocabSize() + ")");
                }
            }
            tokenCount += c.tokens().length;
        }
        int[] ids = new int[tokenCount];
        int r = 0;
        for (Chunk c : batch) {
            System.arraycopy(c.tokens(), 0, ids, r, c.tokens().length);
            r += c.tokens().length;
        }
        float[] x = new float[tokenCount * config.hiddenSize()]; // (T, D) residual stream
        embedding(x, ids);
        if (trace != null) {
            trace.hidden(0, x.clone(), tokenCount);
        }
        return x;
    }

    /**
     * The held decoder layers, in order, on the residual stream {@code x} (updated in place); K/V of every
     * row go to its span's cache.
     *
     * @param x (T, D) with T the total length of the spans
     */
    public void layers(float[] x, List<Span> batch, ForwardTrace trace) {
        int tokenCount = 0;
        for (Span s : batch) {
            tokenCount += s.length();
        }
        int hidden = config.hiddenSize();
        if (x.length != tokenCount * hidden) {
            throw new IllegalArgumentException("hidden states of " + x.length + " values for " + tokenCount + " tokens of width " + hidden);
        }
        // row r of the step: which sequence's KV it uses, and its absolute position
        SequenceKv[] rowKv = new SequenceKv[tokenCount];
        int[] rowPosition = new int[tokenCount];
        int r = 0;
        for (Span s : batch) {
            for (int t = 0; t < s.length(); t++, r++) {
                rowKv[r] = s.kv();
                rowPosition[r] = s.start() + t;
            }
        }

        float[] normed = new float[tokenCount * hidden]; // (T, D)
        for (int l = range.start(); l < range.end(); l++) {
            ModelWeights.Layer layer = weights.layer(l);
            rmsnorm(normed, x, layer.inputLayernorm(), tokenCount, hidden, config.rmsNormEps());
            float[] attnOut = attention(l, layer, normed, tokenCount, rowKv, rowPosition); // (T, D)
            add(x, attnOut, x.length);
            rmsnorm(normed, x, layer.postAttentionLayernorm(), tokenCount, hidden, config.rmsNormEps());
            float[] mlpOut = switch (layer.mlp()) { // (T, D)
                case ModelWeights.Mlp mlp -> mlp(mlp, normed, tokenCount);
                case ModelWeights.SparseMoe moe -> sparseMoe(l, moe, normed, tokenCount, trace);
            };
            add(x, mlpOut, x.length);
            if (trace != null) {
                trace.hidden(l + 1, x.clone(), tokenCount);
            }
        }
    }

    /**
     * The last shard's exit: final norm and lm_head, only on the rows whose logits are wanted.
     *
     * @param x (T, D) the residual stream after the last layer; not modified
     * @return per span, its logits ((T_i or 1), V)
     */
    public float[][] logits(float[] x, List<Span> batch) {
        if (weights.lmHead() == null) {
            throw new IllegalStateException("this shard holds layers " + range + ", not the final norm and lm_head (only the last shard does)");
        }
        int hidden = config.hiddenSize();
        int outRows = 0;
        for (Span s : batch) {
            outRows += s.allLogits() ? s.length() : 1;
        }
        float[] last = new float[outRows * hidden]; // (rows, D)
        int row = 0;
        int first = 0;
        for (Span s : batch) {
            int n = s.length();
            int from = s.allLogits() ? first : first + n - 1;
            int count = s.allLogits() ? n : 1;
            System.arraycopy(x, from * hidden, last, row * hidden, count * hidden);
            row += count;
            first += n;
        }
        rmsnorm(last, last, weights.norm(), outRows, hidden, config.rmsNormEps());
        int vocab = config.vocabSize();
        float[] logits = new float[outRows * vocab]; // (rows, V)
        matmul(logits, last, weights.lmHead(), outRows);
        float[][] out = new float[batch.size()][];
        row = 0;
        for (int i = 0; i < batch.size(); i++) {
            Span s = batch.get(i);
            int count = s.allLogits() ? s.length() : 1;
            out[i] = Arrays.copyOfRange(logits, row * vocab, (row + count) * vocab);
            row += count;
        }
        return out;
    }

    /** @param x (T, D) ← rows of word_embeddings */
    private void embedding(float[] x, int[] tokens) {
        for (int t = 0; t < tokens.length; t++) {
            weights.wordEmbeddings().row(tokens[t], x, t * config.hiddenSize());
        }
    }

    /**
     * Fused QKV projection, per-head QK RMSNorm (V2), RoPE over the first r dims, KV write, causal GQA
     * attention, dense.
     *
     * @param a (T, D) input-normed hidden states
     * @return (T, D)
     */
    private float[] attention(int l, ModelWeights.Layer layer, float[] a, int tokenCount, SequenceKv[] rowKv, int[] rowPosition) {
        int heads = config.numAttentionHeads();
        int kvHeads = config.numKeyValueHeads();
        int d = config.headDim();
        int qkvDim = config.qkvDim();
        int queryDim = config.queryDim();
        int kvDim = config.kvDim();

        float[] qkv = new float[tokenCount * qkvDim]; // (T, (H + 2·Hkv)·d) split by head slots: Q | K | V
        matmul(qkv, a, layer.queryKeyValue(), tokenCount);

        float[] cos = new float[rotary.rotaryDim() / 2]; // (r/2)
        float[] sin = new float[rotary.rotaryDim() / 2]; // (r/2)
        float[] q = new float[tokenCount * queryDim]; // (T, H·d) after QK-norm (when used) and RoPE
        float[] k = new float[kvDim];                  // (Hkv·d) one token's keys
        for (int t = 0; t < tokenCount; t++) {
            int row = t * qkvDim;
            int position = rowPosition[t];
            int slot = rowKv[t].slot(position);
            float[] keys = rowKv[t].keys(l);     // (slots, Hkv·d)
            float[] values = rowKv[t].values(l); // (slots, Hkv·d)
            System.arraycopy(qkv, row, q, t * queryDim, queryDim);
            System.arraycopy(qkv, row + queryDim, k, 0, kvDim);
            System.arraycopy(qkv, row + queryDim + kvDim, values, slot * kvDim, kvDim);
            if (config.useQkNorm()) {
                // (H, d) and (Hkv, d) viewed as rows of width d: one RMSNorm per head
                float[] qh = slice(q, t * queryDim, queryDim);
                rmsnorm(qh, qh, layer.queryLayernorm(), heads, d, config.rmsNormEps());
                System.arraycopy(qh, 0, q, t * queryDim, queryDim);
                rmsnorm(k, k, layer.keyLayernorm(), kvHeads, d, config.rmsNormEps());
            }
            rotary.angles(position, cos, sin);
            for (int h = 0; h < heads; h++) {
                rope(q, t * queryDim + h * d, cos, sin, rotary.rotaryDim());
            }
            for (int h = 0; h < kvHeads; h++) {
                rope(k, h * d, cos, sin, rotary.rotaryDim());
            }
            System.arraycopy(k, 0, keys, slot * kvDim, kvDim);
        }

        float[] out = new float[tokenCount * queryDim]; // (T, H·d) heads concatenated in head order
        float scale = (float) (1.0 / Math.sqrt(d));
        int groups = config.queriesPerKvHead();
        long work = 0;
        for (int t = 0; t < tokenCount; t++) {
            work += (long) heads * (rowPosition[t] + 1) * d;
        }
        // one task per (token, head): causal softmax(q·kᵀ/√d)·v over positions 0..position
        IntStream tasks = IntStream.range(0, tokenCount * heads);
        if (work > (1L << 16)) {
            tasks = tasks.parallel();
        }
        tasks.forEach(task -> {
            int t = task / heads;
            int h = task % heads;
            int kvHead = h / groups; // GQA: query heads g·groups .. (g+1)·groups−1 share KV head g
            SequenceKv kv = rowKv[t];
            float[] keys = kv.keys(l);
            float[] values = kv.values(l);
            int positions = rowPosition[t] + 1;
            float[] scores = new float[positions]; // (P)
            int qOff = t * queryDim + h * d;
            for (int p = 0; p < positions; p++) {
                scores[p] = Dot.dot(q, qOff, keys, kv.slot(p) * kvDim + kvHead * d, d) * scale;
            }
            softmax(scores, 0, positions);
            for (int p = 0; p < positions; p++) {
                float w = scores[p];
                int vOff = kv.slot(p) * kvDim + kvHead * d;
                for (int i = 0; i < d; i++) {
                    out[qOff + i] += w * values[vOff + i];
                }
            }
        });

        float[] projected = new float[tokenCount * config.hiddenSize()]; // (T, D)
        matmul(projected, out, layer.dense(), tokenCount);
        return projected;
    }

    /**
     * SwiGLU MLP: {@code down(silu(gate(x)) ⊙ up(x))}.
     *
     * @param x (T, D)
     * @return (T, D)
     */
    private float[] mlp(ModelWeights.Mlp mlp, float[] x, int tokenCount) {
        int inter = mlp.gateProj().rows();
        float[] gate = new float[tokenCount * inter]; // (T, I)
        float[] up = new float[tokenCount * inter];   // (T, I)
        matmul(gate, x, mlp.gateProj(), tokenCount);
        matmul(up, x, mlp.upProj(), tokenCount);
        siluMul(gate, gate, up, gate.length);
        float[] out = new float[tokenCount * mlp.downProj().rows()]; // (T, D)
        matmul(out, gate, mlp.downProj(), tokenCount);
        return out;
    }

    /**
     * Router → top-k experts per token → weighted sum of expert outputs (k order) + unweighted shared expert
     * (the {@code num_shared_experts} shared experts fused into one MLP).
     * Tokens are grouped by expert so each expert's weights are read once per call.
     *
     * @param m (T, D) post-attention-normed hidden states
     * @return (T, D)
     */
    private float[] sparseMoe(int l, ModelWeights.SparseMoe moe, float[] m, int tokenCount, ForwardTrace trace) {
        int hidden = config.hiddenSize();
        int experts = config.numExperts();
        int topK = config.numExpertsPerTok();

        float[] logits = new float[tokenCount * experts]; // (T, E) fp32 router logits
        matmul(logits, m, moe.gate(), tokenCount);
        Router.Route[] routes = new Router.Route[tokenCount];
        for (int t = 0; t < tokenCount; t++) {
            routes[t] = router.route(logits, t * experts, moe.expertBias());
        }
        if (trace != null) {
            int[][] ids = new int[tokenCount][];
            for (int t = 0; t < tokenCount; t++) {
                ids[t] = routes[t].expertIds().clone();
            }
            trace.routes(l, ids);
        }

        // (expert → list of (token, k) slots routed to it)
        List<List<int[]>> byExpert = new ArrayList<>(experts);
        for (int e = 0; e < experts; e++) {
            byExpert.add(new ArrayList<>());
        }
        for (int t = 0; t < tokenCount; t++) {
            for (int k = 0; k < topK; k++) {
                byExpert.get(routes[t].expertIds()[k]).add(new int[] {t, k});
            }
        }
        float[] expertOut = new float[tokenCount * topK * hidden]; // (T, K, D) each expert's output per slot
        IntStream expertIds = IntStream.range(0, experts).filter(e -> !byExpert.get(e).isEmpty());
        if (tokenCount > 1) {
            expertIds = expertIds.parallel();
        }
        expertIds.forEach(e -> {
            List<int[]> slots = byExpert.get(e);
            int n = slots.size();
            float[] xe = new float[n * hidden]; // (n, D) the tokens routed to expert e
            for (int i = 0; i < n; i++) {
                System.arraycopy(m, slots.get(i)[0] * hidden, xe, i * hidden, hidden);
            }
            float[] ye = mlp(moe.experts().get(e), xe, n); // (n, D)
            for (int i = 0; i < n; i++) {
                int[] slot = slots.get(i);
                System.arraycopy(ye, i * hidden, expertOut, (slot[0] * topK + slot[1]) * hidden, hidden);
            }
        });

        float[] out = moe.sharedExperts() != null ? mlp(moe.sharedExperts(), m, tokenCount) : new float[tokenCount * hidden]; // (T, D)
        float[] routed = new float[hidden]; // (D)
        for (int t = 0; t < tokenCount; t++) {
            Arrays.fill(routed, 0f);
            for (int k = 0; k < topK; k++) {
                float w = routes[t].weights()[k];
                int off = (t * topK + k) * hidden;
                for (int i = 0; i < hidden; i++) {
                    routed[i] += w * expertOut[off + i];
                }
            }
            for (int i = 0; i < hidden; i++) {
                out[t * hidden + i] += routed[i];
            }
        }
        return out;
    }

    private static float[] slice(float[] a, int off, int n) {
        float[] s = new float[n];
        System.arraycopy(a, off, s, 0, n);
        return s;
    }
}
