package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code sample.cu}: the next token of each row of logits chosen on the GPU. Greedy rows (temperature 0) take
 * the argmax with the lowest id winning ties, exactly as engine.Sampler; other rows apply Sampler.Random's
 * truncations in its order (top-k, top-p over the top-k renormalised probabilities, min-p) and draw with a
 * counter-based RNG (Philox keyed by the row's seed, counter = the row's step) via the Gumbel-max trick: the
 * same seed, step and logits give the same token, but not the host Sampler's draws. Every per-row input lives
 * in device buffers, so a captured CUDA graph replays it after one small host-to-device copy.
 * {@link #applyPenalties} and {@link #countTokens} are Sampler.Penalties on per-sequence token tables kept on
 * the device.
 *
 * <p>Two launches per {@link #sample}: {@code sample_partials} reads each row once over {@link #chunks} blocks
 * (16-byte loads) and leaves per (row, chunk) the largest greedy or sort key and the raw logits' max and
 * Σ exp in the workspace; {@code sample_tokens} merges them (a greedy row never scans its logits in one block)
 * and runs the random rows' truncations. The chunk count depends on the vocab only, so graphs keep working and
 * results do not depend on the batch.
 *
 * <p>Legend: B = rows, V = vocab, C = {@link #chunks}(V), S = rows of the penalty tables (sequence slots).
 */
public final class Sample {
    private static final int THREADS = 1024;
    private static final int PARTIAL_THREADS = 256;
    private static final int ELEMENTWISE = 256;
    /** Logits per sample_partials block (sample.cu's CHUNK). */
    static final int CHUNK = 2048;
    /** Bytes of one partial (sample.cu's SamplePartial: key uint64, raw max fp32, raw Σ exp fp32). */
    private static final int PARTIAL_BYTES = 16;
    private final Kernel partials;
    private final Kernel sample;
    private final Kernel penalties;
    private final Kernel count;

    public Sample(CudaDevice device) {
        var m = device.module("sample");
        this.partials = m.kernel("sample_partials");
        this.sample = m.kernel("sample_tokens");
        this.penalties = m.kernel("apply_penalties");
        this.count = m.kernel("count_tokens");
    }

    /** C: the chunks of {@link #CHUNK} logits a row is split into (77 for V = 157184). */
    public static int chunks(int vocab) {
        Shapes.positive("sample_partials", "vocab", vocab);
        return Shapes.ceilDiv(vocab, CHUNK);
    }

    /** Bytes of the workspace {@link #sample} needs: (B, C) partials of 16 bytes. */
    public static long workspaceBytes(int rows, int vocab) {
        return (long) PARTIAL_BYTES * rows * chunks(vocab);
    }

    /**
     * @param logits      (B, V) fp32 logits to choose from (penalties applied)
     * @param rawLogits   (B, V) fp32 logits as the model produced them, for the logprob; may be {@code logits}
     * @param temperature (B) fp32, <= 0: greedy
     * @param topK        (B) int32, 0: all
     * @param topP        (B) fp32, >= 1: all
     * @param minP        (B) fp32, 0: none
     * @param seeds       (B) uint64 RNG key per row
     * @param steps       (B) uint64 RNG counter per row: a new value for every draw of a sequence
     * @param outIds      (B) int32 sampled ids
     * @param outLogprobs (B) fp32 {@code raw[id] − logsumexp(raw)}, or null
     * @param workspace   (B, C) partials: at least {@link #workspaceBytes} bytes, 16-byte aligned
     */
    public void sample(CUstream s, DeviceBuffer logits, DeviceBuffer rawLogits, DeviceBuffer temperature, DeviceBuffer topK, DeviceBuffer topP,
                       DeviceBuffer minP, DeviceBuffer seeds, DeviceBuffer steps, DeviceBuffer outIds, DeviceBuffer outLogprobs, DeviceBuffer workspace,
                       int rows, int vocab) {
        String op = "sample_tokens";
        Shapes.gridYZ(op, "rows", rows);
        Shapes.positive(op, "vocab", vocab);
        Shapes.require(op, "logits", logits, 4L * rows * vocab);
        Shapes.require(op, "rawLogits", rawLogits, 4L * rows * vocab);
        Shapes.require(op, "temperature", temperature, 4L * rows);
        Shapes.require(op, "topK", topK, 4L * rows);
        Shapes.require(op, "topP", topP, 4L * rows);
        Shapes.require(op, "minP", minP, 4L * rows);
        Shapes.require(op, "seeds", seeds, 8L * rows);
        Shapes.require(op, "steps", steps, 8L * rows);
        Shapes.require(op, "outIds", outIds, 4L * rows);
        if (outLogprobs != null) {
            Shapes.require(op, "outLogprobs", outLogprobs, 4L * rows);
        }
        Shapes.require(op, "workspace", workspace, workspaceBytes(rows, vocab));
        if (!workspace.aligned(16)) {
            throw new IllegalArgumentException(op + ": the workspace must be 16-byte aligned");
        }
        // the raw logits' partials only when a logprob is wanted
        partials.launch(s, chunks(vocab), rows, 1, PARTIAL_THREADS, 1, 1, 0, new Object[] {logits, outLogprobs != null ? rawLogits : null, temperature,
                workspace, rows, vocab});
        sample.launch(s, rows, THREADS, 0, logits, rawLogits, workspace, temperature, topK, topP, minP, seeds, steps, outIds, outLogprobs, rows, vocab);
    }

    /**
     * {@code logitsOut = penalised(logitsIn)}: repetition (divide positive, multiply negative logits) on tokens in
     * the prompt or output, presence + frequency·count on generated tokens.
     *
     * @param logitsIn     (B, V) fp32
     * @param logitsOut    (B, V) fp32, may be {@code logitsIn}
     * @param penaltyRows  (B) int32 table row of each batch row's sequence; < 0: copied unchanged
     * @param promptMask   (S, V) uint8 1 where the token occurs in the prompt
     * @param outputCounts (S, V) int32 occurrences among the generated tokens
     * @param repetition   (B) fp32, 1: none
     * @param presence     (B) fp32, 0: none
     * @param frequency    (B) fp32, 0: none
     */
    public void applyPenalties(CUstream s, DeviceBuffer logitsIn, DeviceBuffer logitsOut, DeviceBuffer penaltyRows, DeviceBuffer promptMask,
                               DeviceBuffer outputCounts, DeviceBuffer repetition, DeviceBuffer presence, DeviceBuffer frequency,
                               int rows, int vocab, int tableRows) {
        String op = "apply_penalties";
        Shapes.gridYZ(op, "rows", rows);
        Shapes.positive(op, "vocab", vocab);
        Shapes.positive(op, "tableRows", tableRows);
        Shapes.require(op, "logitsIn", logitsIn, 4L * rows * vocab);
        Shapes.require(op, "logitsOut", logitsOut, 4L * rows * vocab);
        Shapes.require(op, "penaltyRows", penaltyRows, 4L * rows);
        Shapes.require(op, "promptMask", promptMask, (long) tableRows * vocab);
        Shapes.require(op, "outputCounts", outputCounts, 4L * tableRows * vocab);
        Shapes.require(op, "repetition", repetition, 4L * rows);
        Shapes.require(op, "presence", presence, 4L * rows);
        Shapes.require(op, "frequency", frequency, 4L * rows);
        penalties.launch(s, Shapes.ceilDiv(vocab, ELEMENTWISE), rows, 1, ELEMENTWISE, 1, 1, 0, new Object[] {logitsIn, logitsOut, penaltyRows, promptMask,
                outputCounts, repetition, presence, frequency, rows, vocab});
    }

    /**
     * {@code outputCounts[penaltyRows[b], ids[b]] += 1} for every row with a table row (after sampling).
     *
     * @param ids          (B) int32 the sampled ids
     * @param penaltyRows  (B) int32, < 0: skipped
     * @param outputCounts (S, V) int32
     */
    public void countTokens(CUstream s, DeviceBuffer ids, DeviceBuffer penaltyRows, DeviceBuffer outputCounts, int rows, int vocab, int tableRows) {
        String op = "count_tokens";
        Shapes.positive(op, "rows", rows);
        Shapes.positive(op, "vocab", vocab);
        Shapes.positive(op, "tableRows", tableRows);
        Shapes.require(op, "ids", ids, 4L * rows);
        Shapes.require(op, "penaltyRows", penaltyRows, 4L * rows);
        Shapes.require(op, "outputCounts", outputCounts, 4L * tableRows * vocab);
        count.launch(s, Shapes.ceilDiv(rows, ELEMENTWISE), ELEMENTWISE, 0, ids, penaltyRows, outputCounts, rows, vocab);
    }
}
