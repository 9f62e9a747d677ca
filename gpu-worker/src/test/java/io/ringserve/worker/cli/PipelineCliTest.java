package io.ringserve.worker.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * {@code stage} and {@code bench --layers --next-stage} on the command line: a stage of the tiny fixture model served
 * from one {@link Main} (its own thread, as its own process would), and the engine benchmark over a pipeline head in
 * another, on the CPU; then the mistakes a user can make on either, each exiting 2 with one line naming the option.
 */
class PipelineCliTest {
    private static final Pattern LISTENING = Pattern.compile("listening on port (\\d+)");

    /** A {@code stage} command running on its own thread until interrupted. */
    private static final class StageProcess implements AutoCloseable {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        final ByteArrayOutputStream err = new ByteArrayOutputStream();
        final AtomicInteger exit = new AtomicInteger(Integer.MIN_VALUE);
        final Thread thread;

        StageProcess(String... args) {
            Main main = new Main(new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
            thread = Thread.ofPlatform().name("stage-cli").start(() -> exit.set(main.run(args)));
        }

        int port() throws InterruptedException {
            long end = System.nanoTime() + 60_000_000_000L;
            while (System.nanoTime() < end && thread.isAlive()) {
                Matcher m = LISTENING.matcher(out.toString(StandardCharsets.UTF_8));
                if (m.find()) {
                    return Integer.parseInt(m.group(1));
                }
                Thread.sleep(20);
            }
            throw new AssertionError("the stage never listened; exit " + exit.get() + ", err: " + err.toString(StandardCharsets.UTF_8));
        }

        @Override
        public void close() throws InterruptedException {
            thread.interrupt();
            thread.join(30_000);
        }
    }

    @Test
    void aStageServesABenchOverAPipelineHeadOnTheCpu() throws Exception {
        String model = MainTest.TINY.toString();
        try (StageProcess stage = new StageProcess("stage", "--model", model, "--layers", "1-3", "--port", "0", "--backend", "cpu")) {
            int port = stage.port();
            String said = stage.out.toString(StandardCharsets.UTF_8);
            assertTrue(said.contains("stage: layers 1-3 of 3 of " + model + ", on cpu"), said);
            MainTest.Result r = MainTest.run("bench", "--model", model, "--layers", "0-1", "--next-stage", "localhost:" + port, "--batch", "1,3",
                    "--prompt-len", "8", "--gen-len", "6", "--repeats", "1", "--micro-batches", "1", "--backend", "cpu");
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.out().contains("pipeline head: layers 0-1 of 3 on cpu, next stage localhost:" + port + "; hidden states float32"), r.out());
            assertTrue(Pattern.compile("batch +1: decode +[0-9.]+ tokens/s").matcher(r.out()).find(), r.out());
            assertTrue(Pattern.compile("batch +3: decode +[0-9.]+ tokens/s").matcher(r.out()).find(), r.out());
            // two batch sizes, each measured after a warm-up run: a split of every step's time, the hops included
            Matcher split = Pattern.compile("pipeline: 2 stages, 1\\.00 micro-batches/step; per step (\\d+) us = head (\\d+) \\+ stage 1 (\\d+) us"
                    + " computing \\+ (-?\\d+) us between stages").matcher(r.out());
            int splits = 0;
            while (split.find()) {
                splits++;
                long step = Long.parseLong(split.group(1));
                long parts = Long.parseLong(split.group(2)) + Long.parseLong(split.group(3)) + Long.parseLong(split.group(4));
                assertTrue(Math.abs(step - parts) <= 2, "the parts add up to the step: " + split.group());
                assertTrue(Long.parseLong(split.group(4)) > 0, "the hops take time: " + split.group());
            }
            assertEquals(2, splits, r.out());
        }
    }

    @Test
    void mistakesOnEitherSideExitTwoNamingTheOption() {
        String model = MainTest.TINY.toString();
        String[][] cases = {
            {"--layers 0-1 hold layer 0: that is the pipeline head", "stage", "--model", model, "--layers", "0-1", "--port", "0", "--backend", "cpu"},
            {"hold the last layer: this is the last stage, give no --next-stage", "stage", "--model", model, "--layers", "1-3", "--port", "0",
                "--next-stage", "localhost:1", "--backend", "cpu"},
            {"do not reach the last layer (3): give --next-stage", "stage", "--model", model, "--layers", "1-2", "--port", "0", "--backend", "cpu"},
            {"--port N is required", "stage", "--model", model, "--layers", "1-3", "--backend", "cpu"},
            {"--kv-cache-bytes: 'lots' is not a positive size", "stage", "--model", model, "--layers", "1-3", "--port", "0", "--kv-cache-bytes", "lots",
                "--backend", "cpu"},
            {"--layers: layer range 1-9 must satisfy", "stage", "--model", model, "--layers", "1-9", "--port", "0", "--backend", "cpu"},
            {"give --next-stage HOST:PORT of the stage after it", "bench", "--model", model, "--layers", "0-1", "--backend", "cpu"},
            {"a pipeline head holds layer 0 and not the last layer", "bench", "--model", model, "--layers", "1-3", "--next-stage", "localhost:1",
                "--backend", "cpu"},
            {"--next-stage belongs to a bench over a pipeline head", "bench", "--model", model, "--next-stage", "localhost:1", "--backend", "cpu"},
            {"--stage-dtype must be auto, float32 or bfloat16", "bench", "--model", model, "--layers", "0-1", "--next-stage", "localhost:1",
                "--stage-dtype", "fp8", "--backend", "cpu"},
            {"--steps-in-flight must be >= 1", "bench", "--model", model, "--layers", "0-1", "--next-stage", "localhost:1",
                "--steps-in-flight", "0", "--backend", "cpu"},
        };
        for (String[] c : cases) {
            String[] args = java.util.Arrays.copyOfRange(c, 1, c.length);
            MainTest.Result r = MainTest.run(args);
            assertEquals(2, r.exit(), String.join(" ", args) + "\n" + r.err());
            assertTrue(r.err().lines().findFirst().orElse("").contains(c[0]), "expected '" + c[0] + "' in: " + r.err());
        }
    }
}
