package io.ringserve.worker.cuda.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.RecordingDevice;
import io.ringserve.worker.cuda.RecordingDevice.Launch;
import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.stream.Stream;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Every launch method of every kernel wrapper in this package against its kernel's signature in this build's PTX,
 * without a GPU: the wrappers run on a {@link RecordingDevice}, which records each launch instead of calling
 * {@code cuLaunchKernel}, and each recorded launch is checked against the {@code .entry} of
 * {@code <build dir>/kernels-ptx/<file>.ptx} (build-kernels.sh writes it): the kernel exists in that file; as many
 * arguments as parameters; each argument fits its parameter (buffer or null: a 64-bit parameter, Long: a 64-bit
 * parameter the kernel does not use as a global address, Integer: 32-bit, Float: {@code .f32}); the grid (y and z
 * at most 65535), the block (at most 1024 threads, within the kernel's {@code .maxntid} / {@code .reqntid}) and the
 * shared memory (static + dynamic at most 227 KiB; dynamic shared memory passed when the kernel uses it). The driver
 * checks none of the arguments, so a mismatch would otherwise show only on a GPU, as wrong results.
 *
 * <p>Two sets of shapes: tiny ones and Ring-mini-2.0's at a 2048-token prefill chunk over 64 sequences of up to 32k
 * positions (the buffers own no memory, so size costs nothing). Two coverage checks keep new code from escaping: every
 * entry point of every PTX file is launched by some call here (or listed in {@link #UNLAUNCHED} with its reason), and
 * every public method of the package taking a {@link CUstream} first is called. Not checkable from PTX: the order of
 * two arguments of the same kind (two buffers, two ints) and which buffer a pointer parameter expects.
 *
 * <p>Skipped when the build has no PTX (built without nvcc).
 */
class KernelSignatureTest {
    /** {@code <file>.<kernel>} entry points no wrapper launches, with the reason (none today). */
    private static final Map<String, String> UNLAUNCHED = Map.of();
    private static final int MAX_GRID_YZ = 65535;
    private static final int MAX_BLOCK_THREADS = 1024;
    private static final int MAX_BLOCK_Z = 64;
    /** Shared memory per block at most (sm_90; an sm_80 GPU allows 163 KiB). */
    private static final long MAX_SHARED_BYTES = 227 * 1024;

    /** The build's PTX by kernel file, read on first use; empty when the build has none. */
    private static Map<String, PtxKernels> cached;

    /**
     * The model and step dimensions one set of calls uses. Legend as in the wrappers: T = tokens, N = sequences, D =
     * hidden, V = vocab, H / Hkv = heads, d = head dim, r = rotary dims, E = experts, K = experts per token, G = groups,
     * Ie = expert intermediate, I = dense intermediate, B = KV block size, MB = block table width.
     */
    record Dims(String name, int tokens, int seqs, int hidden, int vocab, int heads, int kvHeads, int headDim, int rotaryDim, int experts, int topK,
                int groups, int topkGroup, int moeInter, int inter, int blockSize, int maxBlocks) {
        /** S: rows of one layer's KV cache, every sequence's full block table. */
        int cacheRows() {
            return seqs * maxBlocks * blockSize;
        }

        /** P: rows of the RoPE tables. */
        int positions() {
            return maxBlocks * blockSize;
        }

        int qkvDim() {
            return (heads + 2 * kvHeads) * headDim;
        }

        @Override
        public String toString() {
            return name;
        }
    }

    static final Dims TINY = new Dims("tiny", 12, 3, 64, 1664, 4, 2, 16, 8, 16, 4, 4, 2, 32, 160, 16, 4);
    static final Dims RING_MINI = new Dims("ring-mini prefill", 2048, 64, 2048, 157184, 16, 4, 128, 64, 256, 8, 8, 4, 512, 5120, 16, 2048);

    /** One call of wrapper methods on a recording device: what it launches is checked. */
    record Call(String name, Consumer<Fixture> body) {
    }

    /** A recording device, the shapes, and buffers without memory sized from them. */
    static final class Fixture {
        final RecordingDevice recorder = new RecordingDevice();
        final CudaDevice device = recorder.device();
        final CUstream s = recorder.stream();
        final Dims d;

        Fixture(Dims d) {
            this.d = d;
        }

        /** fp32 of the given shape. */
        DeviceBuffer f32(long... shape) {
            return buffer(4, shape);
        }

        /** bf16 of the given shape. */
        DeviceBuffer bf16(long... shape) {
            return buffer(2, shape);
        }

        /** int32 of the given shape. */
        DeviceBuffer i32(long... shape) {
            return buffer(4, shape);
        }

        /** bf16 when {@code bf16}, else fp32, of the given shape. */
        DeviceBuffer out(boolean bf16, long... shape) {
            return buffer(bf16 ? 2 : 4, shape);
        }

        /** uint8 of the given shape. */
        DeviceBuffer u8(long... shape) {
            return buffer(1, shape);
        }

        /** uint64 of the given shape. */
        DeviceBuffer u64(long... shape) {
            return buffer(8, shape);
        }

        private DeviceBuffer buffer(long width, long... shape) {
            long bytes = width;
            for (long n : shape) {
                bytes = Math.multiplyExact(bytes, n);
            }
            return recorder.alloc(bytes);
        }
    }

    /** Every launch method of every wrapper, with the arguments CudaRunner and the GPU tests give them. */
    static List<Call> calls() {
        List<Call> calls = new ArrayList<>();
        calls.add(new Call("Embedding.launch", f -> new Embedding(f.device).launch(f.s, f.f32(f.d.tokens(), f.d.hidden()), f.bf16(f.d.vocab(), f.d.hidden()),
                f.i32(f.d.tokens()), f.d.tokens(), f.d.hidden(), f.d.vocab())));
        calls.add(new Call("RmsNorm.launch, with delta", f -> new RmsNorm(f.device).launch(f.s, f.bf16(f.d.tokens(), f.d.hidden()),
                f.f32(f.d.tokens(), f.d.hidden()), f.f32(f.d.tokens(), f.d.hidden()), f.bf16(f.d.hidden()), f.d.tokens(), f.d.hidden(), 1e-6f)));
        calls.add(new Call("RmsNorm.launch, no delta", f -> new RmsNorm(f.device).launch(f.s, f.bf16(f.d.tokens(), f.d.hidden()),
                f.f32(f.d.tokens(), f.d.hidden()), null, f.bf16(f.d.hidden()), f.d.tokens(), f.d.hidden(), 1e-6f)));
        calls.add(new Call("Gemv.launch, 1.." + Gemv.MAX_TOKENS + " tokens", f -> {
            Gemv gemv = new Gemv(f.device);
            for (int t = 1; t <= Gemv.MAX_TOKENS; t++) {
                // y (t, N) fp32 = x (t, K) bf16 · W (N, K) bf16ᵀ, the fused QKV projection
                gemv.launch(f.s, f.f32(t, f.d.qkvDim()), f.bf16(t, f.d.hidden()), f.bf16(f.d.qkvDim(), f.d.hidden()), t, f.d.qkvDim(), f.d.hidden(), t % 2 == 0);
            }
        }));
        calls.add(new Call("Gemv.launchSwiglu, 1.." + Gemv.MAX_TOKENS + " tokens", f -> {
            Gemv gemv = new Gemv(f.device);
            for (int t = 1; t <= Gemv.MAX_TOKENS; t++) {
                // h (t, I) bf16 = silu(x · W_gateᵀ) ⊙ (x · W_upᵀ), x (t, D) bf16, gate_up (2·I, D) bf16
                gemv.launchSwiglu(f.s, f.bf16(t, f.d.inter()), f.bf16(t, f.d.hidden()), f.bf16(2L * f.d.inter(), f.d.hidden()), t, f.d.inter(), f.d.hidden());
            }
        }));
        calls.add(new Call("Gemv.launchStreamed and launchSwigluStreamed, 9.." + Gemv.STREAMED_MAX_TOKENS + " tokens", f -> {
            Gemv gemv = new Gemv(f.device);
            for (int t : new int[] {9, 31, Gemv.STREAMED_MAX_TOKENS}) {
                gemv.launchStreamed(f.s, f.f32(t, f.d.qkvDim()), f.bf16(t, f.d.hidden()), f.bf16(f.d.qkvDim(), f.d.hidden()), t, f.d.qkvDim(), f.d.hidden(), false);
                gemv.launchSwigluStreamed(f.s, f.bf16(t, f.d.inter()), f.bf16(t, f.d.hidden()), f.bf16(2L * f.d.inter(), f.d.hidden()), t, f.d.inter(),
                        f.d.hidden());
            }
        }));
        calls.add(new Call("Matmul.launch, T tokens (tensor cores)", f -> new Matmul(f.device).launch(f.s, f.f32(f.d.tokens(), f.d.vocab()),
                f.bf16(f.d.tokens(), f.d.hidden()), f.bf16(f.d.vocab(), f.d.hidden()), f.d.tokens(), f.d.vocab(), f.d.hidden(), false)));
        calls.add(new Call("Matmul.launch, 3 tokens (gemv)", f -> new Matmul(f.device).launch(f.s, f.f32(3, f.d.hidden()), f.bf16(3, f.d.inter()),
                f.bf16(f.d.hidden(), f.d.inter()), 3, f.d.hidden(), f.d.inter(), true)));
        calls.add(new Call("Matmul.launchTiled, 3 tokens", f -> new Matmul(f.device).launchTiled(f.s, f.f32(3, f.d.hidden()), f.bf16(3, f.d.inter()),
                f.bf16(f.d.hidden(), f.d.inter()), 3, f.d.hidden(), f.d.inter(), true)));
        for (boolean qkNorm : new boolean[] {true, false}) {
            calls.add(new Call("QkNormRopeCache.launch, " + (qkNorm ? "QK-norm" : "no QK-norm"), f -> {
                Dims d = f.d;
                int half = d.rotaryDim() / 2;
                new QkNormRopeCache(f.device).launch(f.s, f.f32(d.tokens(), d.qkvDim()), f.i32(d.tokens()), f.i32(d.tokens()), f.f32(d.positions(), half),
                        f.f32(d.positions(), half), qkNorm ? f.bf16(d.headDim()) : null, qkNorm ? f.bf16(d.headDim()) : null,
                        f.f32(d.tokens(), d.heads() * d.headDim()), f.bf16(d.cacheRows(), d.kvHeads() * d.headDim()),
                        f.bf16(d.cacheRows(), d.kvHeads() * d.headDim()), d.tokens(), d.heads(), d.kvHeads(), d.headDim(), d.rotaryDim(), d.positions(),
                        d.cacheRows(), 1e-6f);
            }));
        }
        for (boolean bf16Out : new boolean[] {true, false}) {
            String out = bf16Out ? "bf16 out" : "fp32 out";
            calls.add(new Call("AttentionDecode.launch, " + out, f -> {
                Dims d = f.d;
                new AttentionDecode(f.device).launch(f.s, f.f32(d.seqs(), d.heads() * d.headDim()), f.bf16(d.cacheRows(), d.kvHeads() * d.headDim()),
                        f.bf16(d.cacheRows(), d.kvHeads() * d.headDim()), f.i32(d.seqs(), d.maxBlocks()), f.i32(d.seqs()),
                        f.out(bf16Out, d.seqs(), d.heads() * d.headDim()), bf16Out, d.seqs(), d.heads(), d.kvHeads(), d.headDim(), d.blockSize(),
                        d.maxBlocks(), d.cacheRows());
            }));
            calls.add(new Call("AttentionDecode.launchSplit, " + out, f -> {
                Dims d = f.d;
                int splits = 32;
                int keysPerSplit = Math.ceilDiv(d.positions(), splits); // the splits cover a full block table
                new AttentionDecode(f.device).launchSplit(f.s, f.f32(d.seqs(), d.heads() * d.headDim()), f.bf16(d.cacheRows(), d.kvHeads() * d.headDim()),
                        f.bf16(d.cacheRows(), d.kvHeads() * d.headDim()), f.i32(d.seqs(), d.maxBlocks()), f.i32(d.seqs()),
                        f.out(bf16Out, d.seqs(), d.heads() * d.headDim()), bf16Out,
                        f.recorder.alloc(AttentionDecode.workspaceBytes(d.seqs(), d.heads(), d.headDim(), splits)),
                        f.recorder.alloc(AttentionDecode.countersBytes(d.seqs(), d.kvHeads())), d.seqs(), d.heads(), d.kvHeads(),
                        d.headDim(), d.blockSize(), d.maxBlocks(), d.cacheRows(), splits, keysPerSplit);
            }));
            calls.add(new Call("AttentionPrefill.launch, " + out, f -> {
                Dims d = f.d;
                new AttentionPrefill(f.device).launch(f.s, f.f32(d.tokens(), d.heads() * d.headDim()), f.bf16(d.cacheRows(), d.kvHeads() * d.headDim()),
                        f.bf16(d.cacheRows(), d.kvHeads() * d.headDim()), f.i32(d.seqs(), d.maxBlocks()), f.i32(d.tokens()), f.i32(d.tokens()),
                        f.out(bf16Out, d.tokens(), d.heads() * d.headDim()), bf16Out, d.tokens(), d.seqs(), d.heads(), d.kvHeads(), d.headDim(),
                        d.blockSize(), d.maxBlocks(), d.cacheRows());
            }));
        }
        for (String variant : List.of("sigmoid, expert bias", "sigmoid, no bias", "softmax")) {
            calls.add(new Call("RouterTopK.launch, " + variant, f -> {
                Dims d = f.d;
                RouterTopK.Rules rules = variant.equals("softmax")
                        ? new RouterTopK.Rules(RouterTopK.Scoring.SOFTMAX, d.experts(), d.topK(), 1, 1, true, true, 1f)
                        : new RouterTopK.Rules(RouterTopK.Scoring.SIGMOID_GROUP_LIMITED, d.experts(), d.topK(), d.groups(), d.topkGroup(), false, true, 2.5f);
                DeviceBuffer bias = variant.endsWith("expert bias") ? f.f32(d.experts()) : null;
                new RouterTopK(f.device).launch(f.s, f.f32(d.tokens(), d.experts()), bias, f.i32(d.tokens(), d.topK()), f.f32(d.tokens(), d.topK()),
                        d.tokens(), rules);
            }));
        }
        calls.add(new Call("RouterTopK.launchWithPlan", f -> {
            Dims d = f.d;
            RouterTopK.Rules rules = new RouterTopK.Rules(RouterTopK.Scoring.SIGMOID_GROUP_LIMITED, d.experts(), d.topK(), d.groups(), d.topkGroup(),
                    false, true, 2.5f);
            new RouterTopK(f.device).launchWithPlan(f.s, f.f32(d.tokens(), d.experts()), f.f32(d.experts()), f.i32(d.tokens(), d.topK()),
                    f.f32(d.tokens(), d.topK()), f.i32(MoeExperts.planWords(d.tokens(), d.topK(), d.experts())), f.i32(1), d.tokens(), rules);
        }));
        calls.add(new Call("MoeExperts.group", f -> new MoeExperts(f.device).group(f.s, f.i32(f.d.tokens(), f.d.topK()),
                f.i32(MoeExperts.planWords(f.d.tokens(), f.d.topK(), f.d.experts())), f.d.tokens(), f.d.topK(), f.d.experts())));
        for (boolean tensorCores : new boolean[] {false, true}) {
            String how = tensorCores ? "tensor cores" : "CUDA cores";
            calls.add(new Call("MoeExperts.gateUpSilu, " + how, f -> {
                Dims d = f.d;
                new MoeExperts(f.device).gateUpSilu(f.s, f.bf16(d.tokens(), d.hidden()), f.bf16(d.experts(), 2L * d.moeInter(), d.hidden()),
                        f.i32(MoeExperts.planWords(d.tokens(), d.topK(), d.experts())), f.f32((long) d.tokens() * d.topK(), d.moeInter()), d.tokens(),
                        d.topK(), d.hidden(), d.moeInter(), d.experts(), tensorCores);
            }));
            calls.add(new Call("MoeExperts.down, " + how, f -> {
                Dims d = f.d;
                new MoeExperts(f.device).down(f.s, f.f32((long) d.tokens() * d.topK(), d.moeInter()), f.bf16(d.experts(), d.hidden(), d.moeInter()),
                        f.i32(MoeExperts.planWords(d.tokens(), d.topK(), d.experts())), f.f32((long) d.tokens() * d.topK(), d.hidden()), d.tokens(),
                        d.topK(), d.hidden(), d.moeInter(), d.experts(), tensorCores);
            }));
        }
        for (boolean withShared : new boolean[] {true, false}) {
            calls.add(new Call("MoeExperts.combine, " + (withShared ? "shared and residual" : "no shared, no residual"), f -> {
                Dims d = f.d;
                new MoeExperts(f.device).combine(f.s, f.f32((long) d.tokens() * d.topK(), d.hidden()), f.f32(d.tokens(), d.topK()), f.i32(d.tokens(), d.topK()),
                        withShared ? f.f32(d.tokens(), d.hidden()) : null, withShared ? f.f32(d.tokens(), d.hidden()) : null, f.f32(d.tokens(), d.hidden()),
                        d.tokens(), d.topK(), d.hidden(), d.experts());
            }));
        }
        calls.add(new Call("MoeExperts.combineNorm", f -> {
            Dims d = f.d;
            DeviceBuffer x = f.f32(d.tokens(), d.hidden()); // the residual stream, updated in place
            new MoeExperts(f.device).combineNorm(f.s, f.f32((long) d.tokens() * d.topK(), d.hidden()), f.f32(d.tokens(), d.topK()),
                    f.i32(d.tokens(), d.topK()), f.f32(d.tokens(), d.hidden()), x, x, f.bf16(d.tokens(), d.hidden()), f.bf16(d.hidden()), d.tokens(),
                    d.topK(), d.hidden(), d.experts(), 1e-6f);
        }));
        calls.add(new Call("SiluMul.launch, fused gate | up", f -> new SiluMul(f.device).launch(f.s, f.bf16(f.d.tokens(), f.d.inter()),
                f.f32(f.d.tokens(), 2L * f.d.inter()), f.d.tokens(), f.d.inter())));
        calls.add(new Call("SiluMul.launch, strided", f -> new SiluMul(f.device).launch(f.s, f.bf16(f.d.tokens(), f.d.inter()),
                f.f32(f.d.tokens(), 3L * f.d.inter()), f.f32(f.d.tokens(), 3L * f.d.inter()), f.d.tokens(), f.d.inter(), 3 * f.d.inter())));
        for (boolean logprobs : new boolean[] {true, false}) {
            calls.add(new Call("Sample.sample, " + (logprobs ? "logprobs" : "no logprobs"), f -> {
                int rows = f.d.seqs();
                DeviceBuffer logits = f.f32(rows, f.d.vocab());
                // sample_partials over (C, B) blocks, then sample_tokens merging its (B, C) partials
                new Sample(f.device).sample(f.s, logits, logits, f.f32(rows), f.i32(rows), f.f32(rows), f.f32(rows), f.u64(rows), f.u64(rows), f.i32(rows),
                        logprobs ? f.f32(rows) : null, f.recorder.alloc(Sample.workspaceBytes(rows, f.d.vocab())), rows, f.d.vocab());
            }));
        }
        calls.add(new Call("Sample.applyPenalties", f -> {
            int rows = f.d.seqs();
            int table = rows + 1;
            new Sample(f.device).applyPenalties(f.s, f.f32(rows, f.d.vocab()), f.f32(rows, f.d.vocab()), f.i32(rows), f.u8(table, f.d.vocab()),
                    f.i32(table, f.d.vocab()), f.f32(rows), f.f32(rows), f.f32(rows), rows, f.d.vocab(), table);
        }));
        calls.add(new Call("Sample.countTokens", f -> {
            int rows = f.d.seqs();
            int table = rows + 1;
            new Sample(f.device).countTokens(f.s, f.i32(rows), f.i32(rows), f.i32(table, f.d.vocab()), rows, f.d.vocab(), table);
        }));
        calls.add(new Call("GatherRows.launch", f -> new GatherRows(f.device).launch(f.s, f.f32(f.d.seqs(), f.d.hidden()), f.f32(f.d.tokens(), f.d.hidden()),
                f.i32(f.d.seqs()), f.d.seqs(), f.d.tokens(), f.d.hidden())));
        calls.add(new Call("FillRandom.bf16", f -> {
            long n = (long) f.d.vocab() * f.d.hidden();
            new FillRandom(f.device).bf16(f.s, f.bf16(n), n, 42L, 0.02f);
        }));
        calls.add(new Call("FillRandom.f32", f -> {
            long n = (long) f.d.vocab() * f.d.hidden();
            new FillRandom(f.device).f32(f.s, f.f32(n), n, 42L, 0.02f);
        }));
        return calls;
    }

    /**
     * The build's PTX by kernel file; skips the calling test (never fails it) when the build has no kernels. Checked
     * in each test rather than once for the class so that the skip and its reason show in the test report.
     */
    static synchronized Map<String, PtxKernels> ptx() throws IOException {
        if (cached == null) {
            cached = readPtx();
        }
        assumeFalse(cached.isEmpty(), "no CUDA kernel PTX in " + buildDirectory() + " (built without nvcc): the kernel signatures are not checked");
        return cached;
    }

    private static Map<String, PtxKernels> readPtx() throws IOException {
        Path buildDir = buildDirectory();
        Path dir = buildDir.resolve("kernels-ptx");
        Path list = buildDir.resolve("kernels").resolve("kernels.list");
        // without nvcc build-kernels.sh removes kernels/ (kernels.list included) but not an earlier build's kernels-ptx/
        if (!Files.isDirectory(dir) || !Files.isRegularFile(list)) {
            return Map.of();
        }
        Map<String, PtxKernels> files = new TreeMap<>();
        for (String line : Files.readAllLines(list)) {
            String file = line.strip();
            if (file.isEmpty() || file.startsWith("#")) {
                continue;
            }
            Path ptxFile = dir.resolve(file + ".ptx");
            assertTrue(Files.isRegularFile(ptxFile), "kernels.list names " + file + " but " + ptxFile + " is missing: rebuild the kernels");
            files.put(file, PtxKernels.read(ptxFile));
        }
        assertFalse(files.isEmpty(), list + " lists no kernel files");
        return files;
    }

    /** The build directory ({@code ringserve.build.dir}): where test-classes/ lies, beside kernels/ and kernels-ptx/. */
    private static Path buildDirectory() {
        try {
            return Path.of(KernelSignatureTest.class.getProtectionDomain().getCodeSource().getLocation().toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @TestFactory
    Stream<DynamicTest> everyLaunchMatchesItsKernel() throws IOException {
        Map<String, PtxKernels> ptx = ptx();
        return Stream.of(TINY, RING_MINI).flatMap(d -> calls().stream().map(call -> DynamicTest.dynamicTest(call.name() + " [" + d + "]", () -> {
            List<Launch> launches = run(call, d);
            assertFalse(launches.isEmpty(), call.name() + " launched no kernel");
            List<String> problems = new ArrayList<>();
            for (Launch l : launches) {
                problems.addAll(problems(ptx, l));
            }
            if (!problems.isEmpty()) {
                fail(call.name() + " [" + d + "]: " + problems.size() + " mismatch(es) with the PTX:\n  " + String.join("\n  ", problems));
            }
        })));
    }

    @Test
    void everyPtxEntryIsLaunched() throws IOException {
        Map<String, PtxKernels> ptx = ptx();
        Set<String> launched = new TreeSet<>();
        for (Dims d : List.of(TINY, RING_MINI)) {
            for (Call call : calls()) {
                run(call, d).forEach(l -> launched.add(l.name()));
            }
        }
        Set<String> entries = new TreeSet<>();
        ptx.values().forEach(file -> file.entries().keySet().forEach(k -> entries.add(file.file() + "." + k)));
        Set<String> missed = new TreeSet<>(entries);
        missed.removeAll(launched);
        missed.removeAll(UNLAUNCHED.keySet());
        assertTrue(missed.isEmpty(), "PTX entry points no call of this test launches: " + missed
                + " (call the wrapper method that launches each here, or list it in UNLAUNCHED with the reason)");
        for (String k : UNLAUNCHED.keySet()) {
            assertTrue(entries.contains(k), "UNLAUNCHED names " + k + ", which no PTX file has");
            assertFalse(launched.contains(k), "UNLAUNCHED names " + k + ", which " + UNLAUNCHED.get(k) + ", but a wrapper launches it now");
        }
    }

    /** A public launch method added to a wrapper must be called above, or its launches go unchecked (needs no PTX). */
    @Test
    void everyPublicLaunchMethodIsCalled() throws Exception {
        Set<String> called = new TreeSet<>();
        for (Dims d : List.of(TINY, RING_MINI)) {
            for (Call call : calls()) {
                run(call, d).forEach(l -> called.add(l.caller()));
            }
        }
        Set<String> methods = new TreeSet<>();
        for (Class<?> c : wrapperClasses()) {
            for (Method m : c.getDeclaredMethods()) {
                if (Modifier.isPublic(m.getModifiers()) && !Modifier.isStatic(m.getModifiers()) && !m.isSynthetic() && m.getParameterCount() > 0
                        && m.getParameterTypes()[0] == CUstream.class) {
                    methods.add(RecordingDevice.describe(c, m.getName(), List.of(m.getParameterTypes())));
                }
            }
        }
        assertTrue(methods.size() >= 20, "found only " + methods.size() + " launch methods: " + methods);
        Set<String> uncalled = new TreeSet<>(methods);
        uncalled.removeAll(called);
        assertTrue(uncalled.isEmpty(), "public launch methods this test never calls (add a Call to calls()): " + uncalled);
        Set<String> unknown = new TreeSet<>(called);
        unknown.removeAll(methods);
        assertEquals(Set.of(), unknown, "launches recorded from methods that are not public launch methods of the package");
    }

    /** The public classes of this package in the main classes (not the tests beside them here). */
    private static List<Class<?>> wrapperClasses() throws IOException, URISyntaxException, ClassNotFoundException {
        Path main = Path.of(Embedding.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        String pkg = Embedding.class.getPackageName();
        Path dir = main.resolve(pkg.replace('.', '/'));
        List<Class<?>> classes = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path p : files.filter(p -> p.toString().endsWith(".class")).sorted().toList()) {
                String name = p.getFileName().toString().replaceFirst("\\.class$", "");
                Class<?> c = Class.forName(pkg + "." + name, false, KernelSignatureTest.class.getClassLoader());
                if (Modifier.isPublic(c.getModifiers())) {
                    classes.add(c);
                }
            }
        }
        return classes;
    }

    private static List<Launch> run(Call call, Dims d) {
        Fixture f = new Fixture(d);
        try (RecordingDevice r = f.recorder) {
            call.body().accept(f);
            return r.take();
        }
    }

    /** What is wrong with one launch, each line naming the wrapper method, the kernel and the parameter. */
    static List<String> problems(Map<String, PtxKernels> ptx, Launch l) {
        String where = l.caller() + " -> " + l.name();
        PtxKernels file = ptx.get(l.file());
        if (file == null) {
            return List.of(where + ": the build has no kernel file " + l.file() + ".cu (its files: " + ptx.keySet() + ")");
        }
        PtxKernels.Entry e = file.entries().get(l.kernel());
        if (e == null) {
            return List.of(where + ": " + l.file() + ".ptx has no entry " + l.kernel() + " (its entries: " + new TreeSet<>(file.entries().keySet()) + ")");
        }
        List<String> problems = new ArrayList<>();
        List<Object> args = l.args();
        List<PtxKernels.Param> params = e.params();
        if (args.size() != params.size()) {
            problems.add(where + ": " + args.size() + " arguments, the kernel has " + params.size() + " parameters " + params.stream().map(PtxKernels.Param::type)
                    .toList() + "; arguments " + args.stream().map(KernelSignatureTest::describe).toList());
        }
        for (int i = 0; i < Math.min(args.size(), params.size()); i++) {
            String m = mismatch(args.get(i), params.get(i));
            if (m != null) {
                problems.add(where + ": argument " + i + " is " + describe(args.get(i)) + ", but parameter " + i + " is " + params.get(i) + ": " + m);
            }
        }
        if (l.gridY() > MAX_GRID_YZ || l.gridZ() > MAX_GRID_YZ) {
            problems.add(where + ": grid (" + l.gridX() + ", " + l.gridY() + ", " + l.gridZ() + ") exceeds " + MAX_GRID_YZ + " in y or z");
        }
        if (l.gridX() < 1 || l.gridY() < 1 || l.gridZ() < 1) {
            problems.add(where + ": empty grid (" + l.gridX() + ", " + l.gridY() + ", " + l.gridZ() + ")");
        }
        long threads = (long) l.blockX() * l.blockY() * l.blockZ();
        String block = "block (" + l.blockX() + ", " + l.blockY() + ", " + l.blockZ() + ")";
        if (threads > MAX_BLOCK_THREADS || l.blockZ() > MAX_BLOCK_Z) {
            problems.add(where + ": " + block + " exceeds " + MAX_BLOCK_THREADS + " threads or " + MAX_BLOCK_Z + " in z");
        }
        if (e.maxThreads() > 0 && threads > e.maxThreads()) {
            problems.add(where + ": " + block + " has " + threads + " threads; the kernel's launch bounds allow " + e.maxThreads());
        }
        if (e.requiredBlock() != null && !Arrays.equals(e.requiredBlock(), new int[] {l.blockX(), l.blockY(), l.blockZ()})) {
            problems.add(where + ": " + block + ", the kernel requires " + Arrays.toString(e.requiredBlock()) + " (.reqntid)");
        }
        if (e.staticShared() + l.sharedBytes() > MAX_SHARED_BYTES) {
            problems.add(where + ": " + e.staticShared() + " static + " + l.sharedBytes() + " dynamic shared bytes exceed " + MAX_SHARED_BYTES);
        }
        if (e.usesDynamicShared() && l.sharedBytes() == 0) {
            problems.add(where + ": the kernel uses dynamic shared memory, the launch gives it 0 bytes");
        }
        return problems;
    }

    /** Why {@code arg} cannot fill {@code p}, or null when it can. */
    private static String mismatch(Object arg, PtxKernels.Param p) {
        PtxKernels.Param.Kind need = switch (arg) {
            case null -> PtxKernels.Param.Kind.BITS64;
            case DeviceBuffer b -> PtxKernels.Param.Kind.BITS64;
            case CUdeviceptr ptr -> PtxKernels.Param.Kind.BITS64;
            case Long v -> PtxKernels.Param.Kind.BITS64;
            case Integer v -> PtxKernels.Param.Kind.BITS32;
            case Float v -> PtxKernels.Param.Kind.F32;
            default -> null;
        };
        if (need == null) {
            return "Kernel passes no such argument";
        }
        if (p.kind() != need) {
            return "the kernel expects a " + p.kind().description + " there";
        }
        if (arg instanceof Long && p.address()) {
            return "the kernel uses it as a global address (a pointer), got a Long";
        }
        return null;
    }

    private static String describe(Object arg) {
        return switch (arg) {
            case null -> "null (a null pointer)";
            case DeviceBuffer b -> "a buffer of " + b.bytes() + " bytes";
            case CUdeviceptr p -> "a CUdeviceptr";
            default -> arg.getClass().getSimpleName() + " " + arg;
        };
    }
}
