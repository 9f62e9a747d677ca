package io.ringserve.worker.pipeline;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.protocol.v1.HiddenDtype;
import io.ringserve.protocol.v1.HiddenStates;
import io.ringserve.protocol.v1.SequenceSampling;
import io.ringserve.protocol.v1.StageSample;
import io.ringserve.protocol.v1.TokenLogprob;
import io.ringserve.protocol.v1.TopLogprob;
import io.ringserve.worker.engine.EngineEvent;
import io.ringserve.worker.engine.StepRunner.Sampled;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.weights.Bf16;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Conversions between the pipeline's in-memory values and their protocol v1 messages (worker.proto,
 * {@code PipelineStage}): hidden states, layer ranges, sampling state, sampled tokens.
 *
 * <p>Legend: T = tokens of a micro-batch, D = hidden.
 */
public final class StageWire {
    /**
     * Largest message a stage stream carries: the hidden states of a step, (T, D) float32, plus its plan.
     * A head whose max_batch_tokens would exceed it is refused at the handshake.
     */
    public static final int MAX_MESSAGE_BYTES = 256 << 20;

    private StageWire() {
    }

    /** Bytes per value on the wire. */
    static int bytesPerValue(HiddenDtype dtype) {
        return switch (dtype) {
            case HIDDEN_FLOAT32 -> Float.BYTES;
            case HIDDEN_BFLOAT16 -> 2;
            case HIDDEN_DTYPE_UNSPECIFIED, UNRECOGNIZED -> throw new IllegalArgumentException("hidden dtype " + dtype + " is not an encoding");
        };
    }

    /**
     * Encodes the residual stream.
     *
     * @param x (T, D) float32
     */
    public static HiddenStates encode(float[] x, int tokens, int hidden, HiddenDtype dtype) {
        if (x.length != tokens * hidden) {
            throw new IllegalArgumentException(x.length + " values are not (" + tokens + ", " + hidden + ")");
        }
        ByteBuffer b = ByteBuffer.allocate(x.length * bytesPerValue(dtype)).order(ByteOrder.LITTLE_ENDIAN);
        switch (dtype) {
            case HIDDEN_FLOAT32 -> b.asFloatBuffer().put(x);
            case HIDDEN_BFLOAT16 -> b.asShortBuffer().put(Bf16.fromFloat(x));
            case HIDDEN_DTYPE_UNSPECIFIED, UNRECOGNIZED -> throw new IllegalArgumentException("hidden dtype " + dtype + " is not an encoding");
        }
        // the buffer is never touched again: wrap it instead of copying
        return HiddenStates.newBuilder().setDtype(dtype).setTokens(tokens).setHiddenSize(hidden).setData(UnsafeByteOperations.unsafeWrap(b.array()))
                .build();
    }

    /**
     * Decodes hidden states, checking they have the shape the plan says.
     *
     * @return (T, D) float32; bf16 values widened exactly
     */
    public static float[] decode(HiddenStates h, int tokens, int hidden) {
        if (h.getTokens() != tokens || h.getHiddenSize() != hidden) {
            throw new IllegalArgumentException("hidden states are (" + h.getTokens() + ", " + h.getHiddenSize() + "), the step needs (" + tokens + ", "
                    + hidden + ")");
        }
        ByteString data = h.getData();
        long expected = (long) tokens * hidden * bytesPerValue(h.getDtype());
        if (data.size() != expected) {
            throw new IllegalArgumentException("hidden states carry " + data.size() + " bytes, (" + tokens + ", " + hidden + ") " + h.getDtype() + " is "
                    + expected);
        }
        float[] x = new float[tokens * hidden];
        ByteBuffer b = data.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        if (h.getDtype() == HiddenDtype.HIDDEN_FLOAT32) {
            b.asFloatBuffer().get(x);
        } else {
            for (int i = 0; i < x.length; i++) {
                x[i] = Bf16.toFloat(b.getShort());
            }
        }
        return x;
    }

    public static io.ringserve.protocol.v1.LayerRange range(LayerRange r) {
        return io.ringserve.protocol.v1.LayerRange.newBuilder().setStart(r.start()).setEnd(r.end()).setTotal(r.total()).build();
    }

    /** "a-b of n" for messages. */
    static String text(io.ringserve.protocol.v1.LayerRange r) {
        return r.getStart() + "-" + r.getEnd() + " of " + r.getTotal();
    }

    /** The sampling state the last stage recreates: the same parameters, draws already taken skipped. */
    static SequenceSampling sampling(SamplingParams p, int promptLength, int skippedDraws, int topLogprobs) {
        return SequenceSampling.newBuilder()
                .setTemperature(p.temperature())
                .setTopK(p.topK())
                .setTopP(p.topP())
                .setMinP(p.minP())
                .setRepetitionPenalty(p.repetitionPenalty())
                .setPresencePenalty(p.presencePenalty())
                .setFrequencyPenalty(p.frequencyPenalty())
                .setSeed(p.seed())
                .setPromptLength(promptLength)
                .setSkippedDraws(skippedDraws)
                .setTopLogprobs(topLogprobs)
                .build();
    }

    static SamplingParams params(SequenceSampling s) {
        return new SamplingParams(s.getTemperature(), s.getTopK(), s.getTopP(), s.getMinP(), s.getRepetitionPenalty(), s.getPresencePenalty(),
                s.getFrequencyPenalty(), s.getSeed());
    }

    static StageSample sample(Sampled s) {
        StageSample.Builder b = StageSample.newBuilder().setTokenId(s.token());
        if (!Float.isNaN(s.logprob())) {
            TokenLogprob.Builder lp = TokenLogprob.newBuilder().setLogprob(s.logprob());
            if (s.top() != null) {
                for (EngineEvent.TopLogprob t : s.top()) {
                    lp.addTopLogprobs(TopLogprob.newBuilder().setTokenId(t.tokenId()).setLogprob(t.logprob()));
                }
            }
            b.setLogprob(lp);
        }
        return b.build();
    }

    /** @param topLogprobs what the sequence asked for: -1 none, 0 the sampled token's, n also the n most likely */
    static Sampled sampled(StageSample s, int topLogprobs) {
        if (topLogprobs < 0 || !s.hasLogprob()) {
            return new Sampled(s.getTokenId(), Float.NaN, null);
        }
        List<EngineEvent.TopLogprob> top = null;
        if (topLogprobs > 0) {
            top = new ArrayList<>(s.getLogprob().getTopLogprobsCount());
            for (TopLogprob t : s.getLogprob().getTopLogprobsList()) {
                top.add(new EngineEvent.TopLogprob(t.getTokenId(), t.getLogprob()));
            }
        }
        return new Sampled(s.getTokenId(), s.getLogprob().getLogprob(), top);
    }
}
