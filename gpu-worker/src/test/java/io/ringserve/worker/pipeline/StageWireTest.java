package io.ringserve.worker.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.protocol.v1.HiddenDtype;
import io.ringserve.protocol.v1.HiddenStates;
import io.ringserve.worker.engine.EngineEvent.TopLogprob;
import io.ringserve.worker.engine.StepRunner.Sampled;
import io.ringserve.worker.engine.StepRunner.StepEntry;
import io.ringserve.worker.weights.Bf16;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The pipeline's wire conversions and the micro-batch split. */
class StageWireTest {

    @Test
    void float32HiddenStatesTravelExactlyAndBf16AsRounded() {
        SplittableRandom rng = new SplittableRandom(5);
        float[] x = new float[7 * 33];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (rng.nextGaussian() * Math.pow(10, rng.nextInt(-8, 8)));
        }
        x[3] = -0.0f;
        x[4] = Float.MIN_VALUE;
        HiddenStates f32 = StageWire.encode(x, 7, 33, HiddenDtype.HIDDEN_FLOAT32);
        assertEquals(x.length * 4, f32.getData().size());
        float[] back = StageWire.decode(f32, 7, 33);
        for (int i = 0; i < x.length; i++) {
            assertEquals(Float.floatToRawIntBits(x[i]), Float.floatToRawIntBits(back[i]), "value " + i);
        }
        HiddenStates bf16 = StageWire.encode(x, 7, 33, HiddenDtype.HIDDEN_BFLOAT16);
        assertEquals(x.length * 2, bf16.getData().size());
        assertArrayEquals(Bf16.round(x), StageWire.decode(bf16, 7, 33));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StageWire.decode(f32, 8, 33));
        assertEquals("hidden states are (7, 33), the step needs (8, 33)", e.getMessage());
    }

    @Test
    void sampledTokensAndSamplingStateSurviveTheWire() {
        Sampled plain = new Sampled(12, Float.NaN, null);
        Sampled chosen = new Sampled(12, -0.5f, null);
        Sampled top = new Sampled(12, -0.5f, List.of(new TopLogprob(12, -0.5f), new TopLogprob(3, -1.25f)));
        assertEquals(plain, StageWire.sampled(StageWire.sample(plain), -1));
        assertEquals(chosen, StageWire.sampled(StageWire.sample(chosen), 0));
        assertEquals(top, StageWire.sampled(StageWire.sample(top), 2));
        SamplingParams p = new SamplingParams(0.7, 40, 0.95, 0.05, 1.1, -0.3, 0.25, -42);
        assertEquals(p, StageWire.params(StageWire.sampling(p, 10, 3, 5)), "doubles and a negative seed travel exactly");
    }

    @Test
    void aBatchSplitsIntoContiguousMicroBatchesOfAboutEqualTokens() {
        List<StepEntry> decode = entries(1, 1, 1, 1, 1, 1, 1);
        assertArrayEquals(new int[] {0, 4, 7}, PipelineRunner.split(decode, 2));
        assertArrayEquals(new int[] {0, 3, 5, 7}, PipelineRunner.split(decode, 3));
        assertArrayEquals(new int[] {0, 1, 2}, PipelineRunner.split(entries(1, 1), 3), "never more micro-batches than entries");
        assertArrayEquals(new int[] {0, 1}, PipelineRunner.split(entries(5), 2));
        // a long prefill chunk gets a micro-batch of its own
        assertArrayEquals(new int[] {0, 1, 4}, PipelineRunner.split(entries(30, 1, 1, 1), 2));
        assertArrayEquals(new int[] {0, 3, 4}, PipelineRunner.split(entries(1, 1, 1, 30), 2));
        assertArrayEquals(new int[] {0, 1, 2, 3}, PipelineRunner.split(entries(1, 1, 30), 3), "every micro-batch has an entry");
    }

    static List<StepEntry> entries(int... tokens) {
        List<StepEntry> out = new ArrayList<>();
        for (int i = 0; i < tokens.length; i++) {
            out.add(new StepEntry(i, new int[tokens[i]], 0, new int[] {i}, null));
        }
        return out;
    }
}
