package io.ringserve.worker.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;

import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.cuda.ops.Gemv;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;

/**
 * Per-op GPU time of eager steps, from CUDA events: the per-kernel table (time, bytes, GB/s) of a decode step in
 * docs/BENCHMARKS.md. Attached with {@link CudaRunner#profile}, the runner runs every step eagerly with the
 * shared expert on the compute stream and calls {@link #mark} before each op of {@code forward}: one timing
 * event recorded on the compute stream per mark, plus one at the end of the step, so op i's time is the elapsed
 * time between its event and the next one (the event after an op is the event before the next). After the step
 * the runner calls {@link #endStep}, which waits for the last event and adds each op's time to this step's sums.
 * Events come from a pool that grows to one step's marks and is reused, so a profiled step creates none after the
 * first.
 *
 * <p>What an op's time includes: the GPU time from its event to the next. When the GPU runs ahead of the host (an
 * eager step of small kernels is launch-bound), that time also holds the host's launch latency of the op; the
 * step total of the eager profile against the graph replay's step time shows how much.
 *
 * <p>{@link #table} turns the steps into a {@link Table} (op, launches per step, median µs per step, bytes,
 * GB/s, fraction of a copy bandwidth); {@link #traffic} is the bytes each op must move in a decode step, a pure
 * function of the config and the step's shape. Used from the runner's thread only. Legend: B = sequences of a
 * decode step (= tokens), C = context tokens summed over the sequences, D = hidden, H/Hkv = heads, d = head dim,
 * r = rotary dim, V = vocab, E = experts, K = experts per token, I = dense intermediate, Ie = expert
 * intermediate, Is = shared expert intermediate, L = layers.
 */
public final class KernelProfile implements AutoCloseable {
    /** The ops of one step, in the order the runner launches them when profiling (the table's row order). */
    public enum Op {
        EMBEDDING, INPUT_RMSNORM, QKV_PROJ, QK_NORM_ROPE_CACHE, ATTENTION_DECODE, ATTENTION_PREFILL, O_PROJ, POST_RMSNORM,
        DENSE_GATE_UP, DENSE_SILU, DENSE_DOWN,
        ROUTER_LOGITS, ROUTER, MOE_GATE_UP_SILU, MOE_DOWN, SHARED_GATE_UP, SHARED_SILU, SHARED_DOWN, MOE_COMBINE,
        GATHER_ROWS, FINAL_RMSNORM, LM_HEAD, SAMPLE;

        /** The op's name in tables and JSON: {@code qkv_proj}, {@code moe_down}, … */
        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    private static final int OPS = Op.values().length;
    private static final long BF16 = 2;
    private static final long F32 = 4;

    /** One profiled step: its shape and, per op (by ordinal), the summed µs and the launches. */
    record Step(int tokens, int seqs, long contextTokens, double[] micros, int[] launches) {
        double total() {
            return Arrays.stream(micros).sum();
        }
    }

    private final List<CUevent> events = new ArrayList<>(); // the pool; [i] recorded by the step's i-th mark
    private Op[] marks = new Op[256];                         // [i] the op timed from event i to event i + 1
    private int used;                                         // events recorded in the open step
    private boolean open;
    private int stepTokens;
    private int stepSeqs;
    private long stepContext;
    private final List<Step> steps = new ArrayList<>();

    /** Starts a step of {@code tokens} rows over {@code seqs} sequences attending over {@code contextTokens} positions in all. */
    void beginStep(int tokens, int seqs, long contextTokens) {
        open = true;
        used = 0;
        stepTokens = tokens;
        stepSeqs = seqs;
        stepContext = contextTokens;
    }

    /** Op {@code op} starts now on {@code s}: records the next pool event there. Nothing outside a step (the runner's {@code logits}). */
    void mark(Op op, CUstream s) {
        if (!open) {
            return;
        }
        if (used == marks.length) {
            marks = Arrays.copyOf(marks, 2 * marks.length);
        }
        marks[used] = op;
        record(s);
    }

    private void record(CUstream s) {
        if (used == events.size()) {
            CUevent e = new CUevent();
            cuEventCreate(e, CUevent_flags.CU_EVENT_DEFAULT); // timing enabled
            events.add(e);
        }
        cuEventRecord(events.get(used++), s);
    }

    /** Ends the step on {@code s}: records the last op's end, waits for it and adds the step's op times. */
    void endStep(CUstream s) {
        if (!open) {
            throw new IllegalStateException("no profiled step is open");
        }
        open = false;
        int ops = used;
        record(s);
        cuEventSynchronize(events.get(ops));
        float[] millis = new float[ops];
        float[] one = new float[1];
        for (int i = 0; i < ops; i++) {
            cuEventElapsedTime(one, events.get(i), events.get(i + 1));
            millis[i] = one[0];
        }
        addStep(stepTokens, stepSeqs, stepContext, Arrays.copyOf(marks, ops), millis);
    }

    /** Adds one step's op times: {@code millis[i]} for {@code ops[i]} (what {@link #endStep} measured; the tests' synthetic timings). */
    void addStep(int tokens, int seqs, long contextTokens, Op[] ops, float[] millis) {
        if (ops.length != millis.length) {
            throw new IllegalArgumentException(ops.length + " ops but " + millis.length + " times");
        }
        double[] micros = new double[OPS];
        int[] launches = new int[OPS];
        for (int i = 0; i < ops.length; i++) {
            micros[ops[i].ordinal()] += 1000.0 * millis[i];
            launches[ops[i].ordinal()]++;
        }
        steps.add(new Step(tokens, seqs, contextTokens, micros, launches));
    }

    /** Steps profiled since creation or the last {@link #reset}. */
    public int steps() {
        return steps.size();
    }

    /** Forgets the steps profiled so far (after warm-up steps); keeps the events. */
    public void reset() {
        steps.clear();
    }

    /** Frees the events (the device's context must be current); the profile must not be attached to a runner any more. */
    @Override
    public void close() {
        for (CUevent e : events) {
            cuEventDestroy(e);
        }
        events.clear();
    }

    /**
     * The table of the profiled steps, which must all be decode steps (one token per sequence) of one batch size.
     *
     * @param bandwidth       the copy bandwidth (bytes/s, read + write) each op's and the step's rate is set against
     * @param graphStepMicros the graph-replay step time measured elsewhere (B / decode tokens/s), NaN if unknown
     */
    public Table table(ModelConfig c, double bandwidth, double graphStepMicros) {
        if (steps.isEmpty()) {
            throw new IllegalStateException("no step was profiled");
        }
        int batch = steps.getFirst().seqs();
        double context = 0;
        for (Step s : steps) {
            if (s.tokens() != s.seqs() || s.seqs() != batch) {
                throw new IllegalStateException("the table is of decode steps of one batch size; a step of " + s.tokens() + " tokens over "
                        + s.seqs() + " sequences was profiled after one of " + batch);
            }
            context += s.contextTokens();
        }
        long contextTokens = Math.round(context / steps.size());
        List<Row> rows = new ArrayList<>();
        for (Op op : Op.values()) {
            int launches = 0;
            double[] micros = new double[steps.size()];
            for (int i = 0; i < steps.size(); i++) {
                launches = Math.max(launches, steps.get(i).launches()[op.ordinal()]);
                micros[i] = steps.get(i).micros()[op.ordinal()];
            }
            if (launches > 0) {
                rows.add(new Row(op, launches, median(micros), traffic(c, op, batch, contextTokens)));
            }
        }
        double stepMicros = median(steps.stream().mapToDouble(Step::total).toArray());
        return new Table(batch, contextTokens, steps.size(), List.copyOf(rows), stepMicros, bandwidth, graphStepMicros);
    }

    /** The median (the upper one of an even count). */
    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length == 0 ? Double.NaN : s[s.length / 2];
    }

    // ---- bytes -------------------------------------------------------------------------------------

    /** Bytes an op moves: weights (bf16, V2's fp32 expert bias) and everything else (activations, K/V cache, indices). */
    public record Traffic(long weights, long activations) {
        public long total() {
            return weights + activations;
        }

        Traffic times(long n) {
            return new Traffic(weights * n, activations * n);
        }

        Traffic plus(Traffic o) {
            return new Traffic(weights + o.weights, activations + o.activations);
        }
    }

    /**
     * MoE layers whose combine also writes the next layer's input norm (moe_combine_norm): every MoE layer but the
     * last layer of the model.
     */
    static int fusedNorms(ModelConfig c) {
        int fused = 0;
        for (int l = 0; l + 1 < c.numHiddenLayers(); l++) {
            fused += c.isMoeLayer(l) ? 1 : 0;
        }
        return fused;
    }

    /**
     * How often the runner launches {@code op} in a decode step of {@code batch} sequences: once for the embedding
     * and the head's ops, once per layer for the attention block, per dense layer for the dense MLP, per MoE layer
     * for the router, the experts and (with one) the shared expert, the input norm only where no MoE combine wrote it
     * ({@link #fusedNorms}); never {@code attention_prefill}; the SiLU·mul
     * ops only where the gate_up projection runs on the tensor-core tiles (the GEMV kernel applies it itself:
     * {@link Gemv#serves}).
     */
    public static int launches(ModelConfig c, Op op, int batch) {
        if (op == Op.DENSE_SILU && Gemv.serves(batch, 2 * (long) c.intermediateSize() * c.hiddenSize() * BF16)
                || op == Op.SHARED_SILU && Gemv.serves(batch, 2 * (long) c.sharedExpertIntermediateSize() * c.hiddenSize() * BF16)) {
            return 0;
        }
        int layers = c.numHiddenLayers();
        int moe = 0;
        for (int l = 0; l < layers; l++) {
            moe += c.isMoeLayer(l) ? 1 : 0;
        }
        return switch (op) {
            case EMBEDDING, GATHER_ROWS, FINAL_RMSNORM, LM_HEAD, SAMPLE -> 1;
            case INPUT_RMSNORM -> layers - fusedNorms(c);
            case QKV_PROJ, QK_NORM_ROPE_CACHE, ATTENTION_DECODE, O_PROJ, POST_RMSNORM -> layers;
            case ATTENTION_PREFILL -> 0;
            case DENSE_GATE_UP, DENSE_SILU, DENSE_DOWN -> layers - moe;
            case ROUTER_LOGITS, ROUTER, MOE_GATE_UP_SILU, MOE_DOWN, MOE_COMBINE -> moe;
            case SHARED_GATE_UP, SHARED_SILU, SHARED_DOWN -> c.numSharedExperts() > 0 ? moe : 0;
        };
    }

    /**
     * The bytes {@code op} must read and write in one decode step of {@code batch} sequences (one token each)
     * attending over {@code contextTokens} positions in all (the new tokens included), summed over its
     * {@link #launches}: every weight it reads once, every activation it reads or writes once, in the dtypes the
     * runner's buffers hold (residual stream and GEMM outputs fp32, GEMM inputs bf16). A lower bound of what a
     * kernel moves (a re-read from L2 or a second pass is not counted; block tables, context lengths and
     * sampling parameters are left out), except the routed experts: their weights count the distinct experts a
     * step reads, exact at batch 1 and the expectation under uniform routing above it ({@link #distinctExperts}). At batch 1 the
     * weights of all ops sum to {@link io.ringserve.model.config.DecodeTraffic#bytesPerToken}.
     */
    public static Traffic traffic(ModelConfig c, Op op, int batch, long contextTokens) {
        if (batch < 1 || contextTokens < batch) {
            throw new IllegalArgumentException("a decode step of " + batch + " sequences over " + contextTokens + " context tokens");
        }
        long t = batch; // T = N = B
        long d = c.hiddenSize();
        long q = c.queryDim();
        long qkv = c.qkvDim();
        long kv = c.kvDim();
        long k = c.numExpertsPerTok();
        long e = c.numExperts();
        long inter = c.intermediateSize();
        long ie = c.moeIntermediateSize();
        long is = c.sharedExpertIntermediateSize();
        Traffic one = switch (op) {
            // ids (T) -> rows of the table (T, D) bf16 -> x (T, D) fp32
            case EMBEDDING -> new Traffic(t * d * BF16, t * F32 + t * d * F32);
            // x (T, D) fp32, weight (D) -> h (T, D) bf16
            case INPUT_RMSNORM, POST_RMSNORM -> new Traffic(d * BF16, t * d * F32 + t * d * BF16);
            // h (T, D) bf16, W (H·d + 2·Hkv·d, D) -> qkv (T, H·d + 2·Hkv·d) fp32
            case QKV_PROJ -> new Traffic(qkv * d * BF16, t * d * BF16 + t * qkv * F32);
            // qkv fp32, cos/sin (T, r/2) each, positions and slots -> q (T, H·d) fp32, K and V rows (T, Hkv·d) bf16
            case QK_NORM_ROPE_CACHE -> new Traffic(c.useQkNorm() ? 2L * c.headDim() * BF16 : 0,
                    t * qkv * F32 + t * c.rotaryDim() * F32 + 2 * t * F32 + t * q * F32 + 2 * t * kv * BF16);
            // q (T, H·d) fp32, K and V (C, Hkv·d) bf16 -> (T, H·d) bf16
            case ATTENTION_DECODE -> new Traffic(0, t * q * F32 + 2 * contextTokens * kv * BF16 + t * q * BF16);
            case ATTENTION_PREFILL -> throw new IllegalArgumentException("attention_prefill does not run in a decode step");
            // attn (T, H·d) bf16, W (D, H·d); x (T, D) fp32 read and written (accumulate)
            case O_PROJ -> new Traffic(d * q * BF16, t * q * BF16 + 2 * t * d * F32);
            // h (T, D) bf16, W (2·I, D) -> (T, 2·I) fp32; silu·mul -> (T, I) bf16 (fused up to 8 tokens: gate_up writes
            // (T, I) bf16); down W (D, I), x read and written
            case DENSE_GATE_UP -> new Traffic(2 * inter * d * BF16, t * d * BF16 + gateUpOut(batch, t, inter, d));
            case DENSE_SILU -> new Traffic(0, t * 2 * inter * F32 + t * inter * BF16);
            case DENSE_DOWN -> new Traffic(d * inter * BF16, t * inter * BF16 + 2 * t * d * F32);
            // h (T, D) bf16, gate (E, D) bf16 -> logits (T, E) fp32
            case ROUTER_LOGITS -> new Traffic(e * d * BF16, t * d * BF16 + t * e * F32);
            // logits (T, E) fp32, V2's expert bias (E) fp32 -> ids and weights (T, K); then the ids again -> group plan
            // (2 + 2·E + T·K) int32 (the last block)
            case ROUTER -> new Traffic(hasExpertBias(c) ? e * F32 : 0, t * e * F32 + 2 * t * k * F32 + t * k * F32 + (2 + 2 * e + t * k) * F32);
            // h (T, D) bf16, plan, gate_up (the distinct experts, 2·Ie, D) -> (T, K, Ie) fp32
            case MOE_GATE_UP_SILU -> new Traffic(Math.round(distinctExperts(e, k, t) * 2 * ie * d * BF16), t * d * BF16 + (2 + 2 * e + t * k) * F32 + t * k * ie * F32);
            // (T, K, Ie) fp32, plan, down (the distinct experts, D, Ie) -> (T, K, D) fp32
            case MOE_DOWN -> new Traffic(Math.round(distinctExperts(e, k, t) * d * ie * BF16), t * k * ie * F32 + (2 + 2 * e + t * k) * F32 + t * k * d * F32);
            // shared expert: as the dense MLP with Is, its down writes its own (T, D) fp32 (no accumulate)
            case SHARED_GATE_UP -> new Traffic(2 * is * d * BF16, t * d * BF16 + gateUpOut(batch, t, is, d));
            case SHARED_SILU -> new Traffic(0, t * 2 * is * F32 + t * is * BF16);
            case SHARED_DOWN -> new Traffic(d * is * BF16, t * is * BF16 + t * d * F32);
            // expert outputs (T, K, D), weights and ids (T, K), shared (T, D), x (T, D) fp32 -> x
            case MOE_COMBINE -> new Traffic(0, t * k * d * F32 + 2 * t * k * F32 + (c.numSharedExperts() > 0 ? t * d * F32 : 0) + 2 * t * d * F32);
            // last rows (N) -> (N, D) fp32
            case GATHER_ROWS -> new Traffic(0, t * F32 + 2 * t * d * F32);
            case FINAL_RMSNORM -> new Traffic(d * BF16, t * d * F32 + t * d * BF16);
            // (N, D) bf16, lm_head (V, D) -> logits (N, V) fp32
            case LM_HEAD -> new Traffic((long) c.vocabSize() * d * BF16, t * d * BF16 + t * c.vocabSize() * F32);
            // one pass over the logits -> ids and logprobs (N)
            case SAMPLE -> new Traffic(0, t * c.vocabSize() * F32 + 2 * t * F32);
        };
        Traffic all = one.times(launches(c, op, batch));
        if (op == Op.MOE_COMBINE) { // the fused input norms: x read again, the norm weight, h (T, D) bf16 written
            all = all.plus(new Traffic(d * BF16, t * d * F32 + t * d * BF16).times(fusedNorms(c)));
        }
        return all;
    }

    /**
     * Distinct experts a step of T tokens reads, expected under uniform routing: each token picks K of E, so an
     * expert is missed by all T with probability (1 − K/E)^T and E·(1 − (1 − K/E)^T) are read (K at T = 1; 222.4 of
     * 256 for Ring-mini-2.0 at T = 64, where one pass per (token, k) would read 512).
     */
    static double distinctExperts(long experts, long topK, long tokens) {
        if (tokens == 1 || topK >= experts) {
            return Math.min(experts, topK);
        }
        return experts * (1 - Math.pow(1 - (double) topK / experts, tokens));
    }

    /** What a SwiGLU gate_up writes: (T, I) bf16 when SiLU·mul is fused into it ({@link Gemv#serves}), else (T, 2·I) fp32. */
    private static long gateUpOut(int batch, long t, long inter, long d) {
        return Gemv.serves(batch, 2 * inter * d * BF16) ? t * inter * BF16 : t * 2 * inter * F32;
    }

    private static boolean hasExpertBias(ModelConfig c) {
        return c instanceof BailingMoeV2Config v2 && v2.moeRouterEnableExpertBias();
    }

    // ---- table -------------------------------------------------------------------------------------

    /** One op of the table: launches per step, median µs per step (all its launches), its bytes per step. */
    public record Row(Op op, int launches, double micros, Traffic bytes) {
        /** Achieved bandwidth in bytes/s (NaN for a zero time). */
        public double bytesPerSecond() {
            return micros > 0 ? bytes.total() / (micros * 1e-6) : Double.NaN;
        }
    }

    /**
     * The profile of decode steps at one batch size.
     *
     * @param contextTokens   context tokens summed over the sequences, the mean over the steps
     * @param stepMicros      the median over the steps of the sum of all ops (the eager step on the GPU)
     * @param bandwidth       the copy bandwidth the rates are set against, bytes/s
     * @param graphStepMicros the graph-replay step time of the timed runs (B / decode tokens/s), NaN if unknown
     */
    public record Table(int batch, long contextTokens, int steps, List<Row> rows, double stepMicros, double bandwidth, double graphStepMicros) {
        public long stepBytes() {
            return rows.stream().mapToLong(r -> r.bytes().total()).sum();
        }

        public long stepWeightBytes() {
            return rows.stream().mapToLong(r -> r.bytes().weights()).sum();
        }

        public int stepLaunches() {
            return rows.stream().mapToInt(Row::launches).sum();
        }

        /** The step's bytes at the copy bandwidth: the shortest step the memory allows. */
        public double floorMicros() {
            return stepBytes() / bandwidth * 1e6;
        }

        /** The row of {@code op}, or null when it did not run. */
        public Row row(Op op) {
            return rows.stream().filter(r -> r.op() == op).findFirst().orElse(null);
        }

        /** The table as text, one line per op, then the step's total and the graph replay's step time. */
        public String format() {
            StringBuilder b = new StringBuilder();
            b.append(String.format(Locale.ROOT, "kernel profile at batch %d, %,d context tokens: median of %d eager steps (CUDA events between ops,"
                    + " shared expert on the compute stream)%n", batch, contextTokens, steps));
            b.append(String.format(Locale.ROOT, "%-20s %8s %12s %16s %10s %10s%n", "op", "launches", "us/step", "bytes/step", "GB/s", "% copy bw"));
            for (Row r : rows) {
                b.append(line(r.op().label(), r.launches(), r.micros(), r.bytes().total()));
            }
            b.append(line("step (all ops)", stepLaunches(), stepMicros, stepBytes()));
            b.append(String.format(Locale.ROOT, "bandwidth floor: %,d bytes at %.1f GB/s = %,.1f us per step%n", stepBytes(), bandwidth / 1e9,
                    floorMicros()));
            if (Double.isFinite(graphStepMicros) && graphStepMicros > 0) {
                b.append(String.format(Locale.ROOT, "graph replay step (timed runs, batch / decode tokens/s): %,.1f us, %.1f %% of the roofline;"
                        + " eager step above: %,.1f us, %.1f %%%n", graphStepMicros, 100 * floorMicros() / graphStepMicros, stepMicros,
                        100 * floorMicros() / stepMicros));
            } else {
                b.append("graph replay step: not measured\n");
            }
            return b.toString();
        }

        private String line(String name, int launches, double micros, long bytes) {
            double rate = micros > 0 ? bytes / (micros * 1e-6) : Double.NaN;
            return String.format(Locale.ROOT, "%-20s %8d %,12.1f %,16d %10.1f %8.1f %%%n", name, launches, micros, bytes, rate / 1e9,
                    100 * rate / bandwidth);
        }

        /** The table as one JSON object (µs, bytes, GB/s, fractions of the copy bandwidth; null for what was not measured). */
        public String json() {
            StringBuilder b = new StringBuilder();
            b.append("{\"batch\": ").append(batch)
                    .append(", \"context_tokens\": ").append(contextTokens)
                    .append(", \"steps\": ").append(steps)
                    .append(", \"step_launches\": ").append(stepLaunches())
                    .append(", \"step_us\": ").append(number(stepMicros))
                    .append(", \"step_bytes\": ").append(stepBytes())
                    .append(", \"step_weight_bytes\": ").append(stepWeightBytes())
                    .append(", \"step_gb_per_s\": ").append(number(stepBytes() / (stepMicros * 1e-6) / 1e9))
                    .append(", \"step_copy_bandwidth_fraction\": ").append(number(floorMicros() / stepMicros))
                    .append(", \"floor_us\": ").append(number(floorMicros()))
                    .append(", \"graph_step_us\": ").append(number(graphStepMicros))
                    .append(", \"graph_step_copy_bandwidth_fraction\": ").append(number(floorMicros() / graphStepMicros))
                    .append(", \"ops\": [");
            for (int i = 0; i < rows.size(); i++) {
                Row r = rows.get(i);
                b.append(i == 0 ? "" : ", ")
                        .append("{\"op\": \"").append(r.op().label())
                        .append("\", \"launches\": ").append(r.launches())
                        .append(", \"us\": ").append(number(r.micros()))
                        .append(", \"bytes\": ").append(r.bytes().total())
                        .append(", \"weight_bytes\": ").append(r.bytes().weights())
                        .append(", \"gb_per_s\": ").append(number(r.bytesPerSecond() / 1e9))
                        .append(", \"copy_bandwidth_fraction\": ").append(number(r.bytesPerSecond() / bandwidth))
                        .append('}');
            }
            return b.append("]}").toString();
        }

        private static String number(double v) {
            return Double.isFinite(v) ? String.format(Locale.ROOT, "%.3f", v) : "null";
        }
    }
}
