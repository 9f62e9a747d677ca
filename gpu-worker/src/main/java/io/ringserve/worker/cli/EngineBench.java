package io.ringserve.worker.cli;

import io.ringserve.model.config.DecodeTraffic;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.worker.cuda.KernelProfile;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineEvent;
import io.ringserve.worker.engine.EngineObserver;
import io.ringserve.worker.engine.EngineRequest;
import io.ringserve.worker.engine.EngineSettings;
import io.ringserve.worker.engine.StepRunner;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.function.Supplier;

/**
 * Throughput of the continuous-batching engine over any backend: for each batch size B, B requests submitted
 * together, each a random {@code promptLen}-token prompt and exactly {@code genLen} generated tokens (end of
 * sequence ignored). Per batch size, medians over {@code repeats} runs after one warm-up run:
 * <ul>
 *   <li>decode tokens/s: tokens emitted between the moment every request has its first token and the last
 *       finish, divided by that time (all B streams decoding together);</li>
 *   <li>time to first token: the median request's wait from submission to its first token;</li>
 *   <li>prefill tokens/s: B·promptLen over the time until every request has its first token.</li>
 * </ul>
 * At batch 1 the decode rate is also set against the memory roofline: weight bytes one token reads
 * ({@link DecodeTraffic}) against the measured copy bandwidth.
 */
final class EngineBench {
    /** One batch size's medians. */
    record Result(int batch, double decodeTokensPerSecond, double timeToFirstTokenMs, double prefillTokensPerSecond) {
    }

    /** What the bench reports besides the per-batch results. */
    record Setup(String model, String backend, String device, int promptLen, int genLen, int repeats, long weightBytes,
                 double copyBandwidth, long memoryUsed) {
    }

    private EngineBench() {
    }

    static List<Result> run(Supplier<StepRunner> runners, ModelConfig config, int[] batches, int promptLen, int genLen, int repeats,
                            PrintStream out) {
        List<Result> results = new ArrayList<>();
        for (int batch : batches) {
            double[] decode = new double[repeats];
            double[] ttft = new double[repeats];
            double[] prefill = new double[repeats];
            for (int r = -1; r < repeats; r++) { // r = -1 warms up (JIT, kernel modules, caches)
                double[] m = once(runners.get(), config, batch, promptLen, genLen, 1000L * batch + Math.max(r, 0));
                if (r >= 0) {
                    decode[r] = m[0];
                    ttft[r] = m[1];
                    prefill[r] = m[2];
                }
            }
            Result result = new Result(batch, median(decode), median(ttft), median(prefill));
            results.add(result);
            out.printf(Locale.ROOT, "batch %3d: decode %10.1f tokens/s   first token %8.1f ms   prefill %10.1f tokens/s   (median of %d)%n", batch,
                    result.decodeTokensPerSecond(), result.timeToFirstTokenMs(), result.prefillTokensPerSecond(), repeats);
        }
        return results;
    }

    /** How long a runner may stay unavailable (a pipeline head joining its chain) before the run fails. */
    private static final long AVAILABLE_TIMEOUT_NANOS = 120_000_000_000L;

    /** The engine's token budget per step at batch size {@code batch}: what a pipeline head announces to its stages. */
    static int maxBatchTokens(int batch) {
        return Math.max(2048, batch);
    }

    /** Waits until {@code runner} can run steps (a pipeline head: its chain is whole). */
    private static void awaitAvailable(StepRunner runner, long timeoutNanos) throws InterruptedException {
        long end = System.nanoTime() + timeoutNanos;
        String why;
        while ((why = runner.unavailable()) != null) {
            if (System.nanoTime() > end) {
                throw new IllegalStateException("the runner did not become available within " + timeoutNanos / 1_000_000_000L + " s: " + why);
            }
            Thread.sleep(20);
        }
    }

    /** One run: {decode tokens/s, median time to first token in ms, prefill tokens/s}. */
    private static double[] once(StepRunner runner, ModelConfig config, int batch, int promptLen, int genLen, long seed) {
        int blockSize = 16;
        long blocks = (long) batch * ((promptLen + genLen + blockSize - 1) / blockSize + 1);
        EngineSettings settings = new EngineSettings(batch, batch, maxBatchTokens(batch), blockSize, blocks * runner.kvBytesPerBlock(blockSize));
        long[] first = new long[batch];
        long[][] stamps = new long[batch][genLen];
        int[] counts = new int[batch];
        String[] failure = new String[1];
        CountDownLatch done = new CountDownLatch(batch);
        long t0;
        try (Engine engine = new Engine(runner, Set.of(), settings, EngineObserver.NONE).start()) {
            awaitAvailable(runner, AVAILABLE_TIMEOUT_NANOS);
            t0 = System.nanoTime();
            SplittableRandom rng = new SplittableRandom(seed);
            for (int i = 0; i < batch; i++) {
                int[] prompt = new int[promptLen];
                for (int j = 0; j < promptLen; j++) {
                    prompt[j] = rng.nextInt(Math.min(config.vocabSize(), 1536));
                }
                int k = i;
                engine.submit(new EngineRequest("bench-" + i, prompt, SamplingParams.greedy(), new StoppingParams(genLen, Set.of(), true), -1, null),
                        e -> {
                            switch (e) {
                                case EngineEvent.Tokens t -> {
                                    long now = System.nanoTime();
                                    for (int n = 0; n < t.ids().length && counts[k] < genLen; n++) {
                                        stamps[k][counts[k]++] = now;
                                    }
                                    if (first[k] == 0) {
                                        first[k] = now;
                                    }
                                }
                                case EngineEvent.Finished f -> done.countDown();
                                case EngineEvent.Failed f -> {
                                    failure[0] = f.message();
                                    done.countDown();
                                }
                            }
                        });
            }
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } finally {
            runner.close();
        }
        if (failure[0] != null) {
            throw new IllegalStateException("a benchmark request failed: " + failure[0]);
        }
        long allFirst = Arrays.stream(first).max().orElseThrow();
        long end = 0;
        long decoded = 0;
        double[] waits = new double[batch];
        for (int i = 0; i < batch; i++) {
            waits[i] = (first[i] - t0) / 1e6;
            for (int n = 0; n < counts[i]; n++) {
                end = Math.max(end, stamps[i][n]);
                if (stamps[i][n] > allFirst) {
                    decoded++;
                }
            }
        }
        double decodeRate = end > allFirst ? decoded / ((end - allFirst) / 1e9) : Double.NaN;
        double prefillRate = (double) batch * promptLen / ((allFirst - t0) / 1e9);
        return new double[] {decodeRate, median(waits), prefillRate};
    }

    /** CPU memory copy bandwidth (read + write) in bytes/s: the median of several copies of a 256 MiB array. */
    static double hostCopyBandwidth() {
        int n = 64 << 20; // ints: 256 MiB
        int[] a = new int[n];
        int[] b = new int[n];
        Arrays.fill(a, 1);
        double[] seconds = new double[5];
        for (int r = -1; r < seconds.length; r++) {
            long t0 = System.nanoTime();
            System.arraycopy(a, 0, b, 0, n);
            long t1 = System.nanoTime();
            if (r >= 0) {
                seconds[r] = (t1 - t0) / 1e9;
            }
        }
        return 2.0 * 4 * n / median(seconds);
    }

    static void printRoofline(ModelConfig config, List<Result> results, double bandwidth, PrintStream out) {
        long bytes = DecodeTraffic.bytesPerToken(config);
        double limit = bandwidth / bytes;
        out.printf(Locale.ROOT, "weights read per decoded token at batch 1: %,d bytes; copy bandwidth %.1f GB/s -> roofline %.1f tokens/s%n", bytes,
                bandwidth / 1e9, limit);
        for (Result r : results) {
            if (r.batch() == 1) {
                out.printf(Locale.ROOT, "batch 1 decode reaches %.1f %% of the roofline%n", 100 * r.decodeTokensPerSecond() / limit);
            }
        }
    }

    static String json(Setup s, ModelConfig config, List<Result> results) {
        return json(s, config, results, List.of());
    }

    /** With {@code bench --profile}: the per-kernel tables ({@link KernelProfile.Table#json}) under {@code "profiles"}. */
    static String json(Setup s, ModelConfig config, List<Result> results, List<KernelProfile.Table> profiles) {
        long bytes = DecodeTraffic.bytesPerToken(config);
        StringBuilder b = new StringBuilder();
        b.append("{\n");
        b.append("  \"model\": ").append(quote(s.model())).append(",\n");
        b.append("  \"backend\": ").append(quote(s.backend())).append(",\n");
        b.append("  \"device\": ").append(quote(s.device())).append(",\n");
        b.append("  \"prompt_len\": ").append(s.promptLen()).append(",\n");
        b.append("  \"gen_len\": ").append(s.genLen()).append(",\n");
        b.append("  \"repeats\": ").append(s.repeats()).append(",\n");
        b.append("  \"weight_bytes\": ").append(s.weightBytes()).append(",\n");
        b.append("  \"memory_used_bytes\": ").append(s.memoryUsed()).append(",\n");
        b.append("  \"weight_bytes_per_token_batch1\": ").append(bytes).append(",\n");
        b.append("  \"copy_bandwidth_bytes_per_s\": ").append(number(s.copyBandwidth())).append(",\n");
        b.append("  \"roofline_tokens_per_s_batch1\": ").append(number(s.copyBandwidth() / bytes)).append(",\n");
        b.append("  \"results\": [");
        for (int i = 0; i < results.size(); i++) {
            Result r = results.get(i);
            b.append(i == 0 ? "\n" : ",\n");
            b.append("    {\"batch\": ").append(r.batch())
                    .append(", \"decode_tokens_per_s\": ").append(number(r.decodeTokensPerSecond()))
                    .append(", \"time_to_first_token_ms\": ").append(number(r.timeToFirstTokenMs()))
                    .append(", \"prefill_tokens_per_s\": ").append(number(r.prefillTokensPerSecond()))
                    .append(r.batch() == 1 ? ", \"roofline_fraction\": " + number(r.decodeTokensPerSecond() * bytes / s.copyBandwidth()) : "")
                    .append('}');
        }
        b.append("\n  ]");
        if (!profiles.isEmpty()) {
            b.append(",\n  \"profiles\": [");
            for (int i = 0; i < profiles.size(); i++) {
                b.append(i == 0 ? "\n    " : ",\n    ").append(profiles.get(i).json());
            }
            b.append("\n  ]");
        }
        b.append("\n}\n");
        return b.toString();
    }

    private static String number(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.3f", v) : "null";
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length == 0 ? Double.NaN : s[s.length / 2];
    }
}
