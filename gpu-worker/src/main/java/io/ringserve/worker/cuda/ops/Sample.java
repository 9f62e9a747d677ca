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
 * <p>Legend: B = rows, V = vocab, S = rows of the penalty tables (sequence slots).
 */
public final class Sample {
    private static final int THREADS = 1024;
    private static final int ELEMENTWISE = 256;
    private final Kernel sample;
    private final Kernel penalties;
    private final Kernel count;

    public Sample(CudaDevice device) {
        var m = device.module("sample");
        this.sample = m.kernel("sample_tokens");
        this.penalties = m.kernel("apply_penalties");
        this.count = m.kernel("count_tokens");
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
     */
    public void sample(CUstream s, DeviceBuffer logits, DeviceBuffer rawLogits, DeviceBuffer temperature, DeviceBuffer topK, DeviceBuffer topP,
                       DeviceBuffer minP, DeviceBuffer seeds, DeviceBuffer steps, DeviceBuffer outIds, DeviceBuffer outLogprobs, int rows, int vocab) {
        String op = "sample_tokens";
        Shapes.positive(op, "rows", rows);
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
        sample.launch(s, rows, THREADS, 0, logits, rawLogits, temperature, topK, topP, minP, seeds, steps, outIds, outLogprobs, rows, vocab);
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
        Shapes.positive(op, "rows", rows);
        Shapes.positive(op, "vocab", vocab);
        Shapes.positive(op, "tableRows", tableRows);
        if (rows > 65535) {
            throw new IllegalArgumentException(op + ": at most 65535 rows, got " + rows);
        }
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
