package io.ringserve.worker.pipeline;

import java.util.Arrays;

/**
 * Where the stages' time went over the steps a pipeline head ran: the wall time of the steps (from the head's
 * first layer to the last sampled token back) and, per stage, the time it computed (the head's layers and
 * encoding; each later stage's decode, layers, encode or sampling). A stage is idle the rest of the time:
 * filling and draining the pipeline within a step, the network hops, the engine's scheduling.
 *
 * @param steps        engine steps
 * @param microBatches micro-batches sent down the chain
 * @param wallNanos    sum of the steps' wall times
 * @param busyNanos    per stage, head first, the time it computed during those steps
 */
public record PipelineStats(long steps, long microBatches, long wallNanos, long[] busyNanos) {
    public PipelineStats {
        busyNanos = busyNanos.clone();
    }

    public int stages() {
        return busyNanos.length;
    }

    /** Fraction of stage {@code k}'s step time spent computing. */
    public double utilization(int k) {
        return wallNanos == 0 ? 0 : (double) busyNanos[k] / wallNanos;
    }

    /** The bubble: fraction of all stages' step time spent idle, {@code 1 - Σ busy / (stages · wall)}. */
    public double bubble() {
        if (wallNanos == 0 || busyNanos.length == 0) {
            return 0;
        }
        return 1 - (double) Arrays.stream(busyNanos).sum() / ((double) busyNanos.length * wallNanos);
    }

    /** What happened between {@code earlier} and this snapshot (same number of stages). */
    public PipelineStats since(PipelineStats earlier) {
        long[] busy = busyNanos.clone();
        for (int k = 0; k < Math.min(busy.length, earlier.busyNanos.length); k++) {
            busy[k] -= earlier.busyNanos[k];
        }
        return new PipelineStats(steps - earlier.steps, microBatches - earlier.microBatches, wallNanos - earlier.wallNanos, busy);
    }

    /** This and {@code other} together (e.g. the runs of several heads); the stages line up head first. */
    public PipelineStats plus(PipelineStats other) {
        long[] busy = Arrays.copyOf(busyNanos, Math.max(busyNanos.length, other.busyNanos.length));
        for (int k = 0; k < other.busyNanos.length; k++) {
            busy[k] += other.busyNanos[k];
        }
        return new PipelineStats(steps + other.steps, microBatches + other.microBatches, wallNanos + other.wallNanos, busy);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(String.format(java.util.Locale.ROOT, "%d steps, %d micro-batches, %.1f ms step time; busy",
                steps, microBatches, wallNanos / 1e6));
        for (int k = 0; k < busyNanos.length; k++) {
            sb.append(String.format(java.util.Locale.ROOT, " stage%d %.0f%%", k, 100 * utilization(k)));
        }
        return sb.append(String.format(java.util.Locale.ROOT, "; bubble %.1f%%", 100 * bubble())).toString();
    }
}
