package io.ringserve.worker.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.DecodeTraffic;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.cuda.KernelProfile.Op;
import io.ringserve.worker.cuda.KernelProfile.Table;
import io.ringserve.worker.cuda.KernelProfile.Traffic;
import io.ringserve.worker.reference.Golden;
import java.util.List;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** The profile's host side, no GPU needed: bytes per op of a decode step, launches per step, aggregation and the table. */
class KernelProfileTest {
    private static final ModelConfig MINI = BailingMoeV2Config.ringMini20();
    private static final ModelConfig LITE = BailingMoeConfig.ringLite();

    private static long sum(ModelConfig c, int batch, long context, boolean weightsOnly) {
        long bytes = 0;
        for (Op op : Op.values()) {
            if (op != Op.ATTENTION_PREFILL) {
                Traffic t = KernelProfile.traffic(c, op, batch, context);
                bytes += weightsOnly ? t.weights() : t.total();
            }
        }
        return bytes;
    }

    private static long activations(ModelConfig c, int batch, long context) {
        return sum(c, batch, context, false) - sum(c, batch, context, true);
    }

    @Test
    void atBatchOneTheWeightsOfAllOpsAreDecodeTraffic() {
        for (ModelConfig c : List.of(MINI, LITE, ModelConfig.load(Golden.dir("tiny-ring-a")), ModelConfig.load(Golden.dir("tiny-ring-lite-a")))) {
            for (long context : new long[] {1, 640, 32768}) {
                long total = sum(c, 1, context, false);
                assertEquals(DecodeTraffic.bytesPerToken(c), total - activations(c, 1, context), c.architecture() + ", context " + context);
            }
        }
        // the numbers docs/BENCHMARKS.md gives for the two presets
        assertEquals(2_222_134_272L, sum(MINI, 1, 640, true));
        assertEquals(4_988_313_600L, sum(LITE, 1, 640, true));
        // what is not weights at batch 1 and a short context: the logits (V fp32, written then sampled) and small vectors
        long miniActivations = activations(MINI, 1, 1);
        assertTrue(miniActivations > 2L * 4 * MINI.vocabSize() && miniActivations < 0.01 * DecodeTraffic.bytesPerToken(MINI), "" + miniActivations);
    }

    @Test
    void opsCountWhatTheyRead() {
        ModelConfig c = MINI; // 20 layers (the first dense), 256 experts top-8, hidden 2048, 16 / 4 heads of 128
        long d = 2048;
        assertEquals(new Traffic(20L * (2048 + 2 * 512) * d * 2, 20L * (d * 2 + 3072 * 4)), KernelProfile.traffic(c, Op.QKV_PROJ, 1, 100));
        assertEquals((long) c.vocabSize() * d * 2, KernelProfile.traffic(c, Op.LM_HEAD, 1, 100).weights());
        assertEquals((long) c.vocabSize() * d * 2, KernelProfile.traffic(c, Op.LM_HEAD, 8, 800).weights(),
                "lm_head's weights are read once per step whatever the batch");
        // attention: K and V of every context position (bf16, 4 KV heads of 128) plus q in (fp32) and out (bf16), per layer
        assertEquals(20L * (2 * 1000 * 512 * 2 + 2048 * 4 + 2048 * 2), KernelProfile.traffic(c, Op.ATTENTION_DECODE, 1, 1000).activations());
        assertEquals(0, KernelProfile.traffic(c, Op.ATTENTION_DECODE, 1, 1000).weights());
        long expertGateUp = 2L * 512 * d * 2; // one expert's gate and up rows
        assertEquals(19L * 8 * expertGateUp, KernelProfile.traffic(c, Op.MOE_GATE_UP_SILU, 1, 1).weights(), "K experts per MoE layer");
        // above batch 1: the distinct experts expected under uniform routing, E·(1 − (1 − K/E)^B), each read once
        assertEquals(57.42, KernelProfile.traffic(c, Op.MOE_GATE_UP_SILU, 8, 8).weights() / (19.0 * expertGateUp), 0.01);
        assertEquals(222.44, KernelProfile.traffic(c, Op.MOE_GATE_UP_SILU, 64, 64).weights() / (19.0 * expertGateUp), 0.01);
        assertEquals(256, KernelProfile.traffic(c, Op.MOE_DOWN, 1024, 1024).weights() / (19.0 * 512 * d * 2), 1e-6, "never more than E");
        assertEquals(19L * 256 * d * 2, KernelProfile.traffic(c, Op.ROUTER_LOGITS, 3, 3).weights(), "the gate");
        assertEquals(19L * 256 * 4, KernelProfile.traffic(c, Op.ROUTER, 3, 3).weights(), "fp32 expert bias");
        assertEquals(new Traffic(2L * 5120 * d * 2, 2 * 2048 + 5120 * 2), KernelProfile.traffic(c, Op.DENSE_GATE_UP, 1, 1), "one dense layer, SiLU·mul fused");
        assertEquals(new Traffic(2L * 5120 * d * 2, 9 * 2 * 2048 + 9 * 2 * 5120 * 4), KernelProfile.traffic(c, Op.DENSE_GATE_UP, 9, 9),
                "above 8: the 42 MB dense gate_up on the tensor-core tiles, fp32 out");
        long sharedGateUp = 2L * c.sharedExpertIntermediateSize() * d * 2;
        assertEquals(new Traffic(19 * sharedGateUp, 19L * (64 * 2 * 2048 + 64 * c.sharedExpertIntermediateSize() * 2)),
                KernelProfile.traffic(c, Op.SHARED_GATE_UP, 64, 64), "64: the shared expert's 4 MB gate_up streams through the GEMV, SiLU·mul fused");
        assertEquals(0, KernelProfile.traffic(LITE, Op.DENSE_DOWN, 1, 1).total(), "Ring-lite has no dense layer");
        assertEquals(0, KernelProfile.traffic(LITE, Op.QK_NORM_ROPE_CACHE, 1, 1).weights(), "v1 has no QK norm");
        assertThrows(IllegalArgumentException.class, () -> KernelProfile.traffic(c, Op.ATTENTION_PREFILL, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> KernelProfile.traffic(c, Op.QKV_PROJ, 4, 3), "each sequence attends to >= 1 position");
        // bytes grow with the batch for activations only (and the routed experts): batch 8 moves less than 8 batch-1 steps
        assertTrue(sum(c, 8, 8 * 640, false) < 8 * sum(c, 1, 640, false));
    }

    @Test
    void launchesPerStepMatchTheForwardPass() {
        int mini = 0;
        int lite = 0;
        for (Op op : Op.values()) {
            mini += KernelProfile.launches(MINI, op, 1);
            lite += KernelProfile.launches(LITE, op, 1);
        }
        assertEquals(5 + 6 * 20 + 2 + 7 * 19 - 18, mini,
                "embedding and head; attention per layer; one dense layer; 19 MoE layers; 18 input norms written by the combine before them");
        assertEquals(5 + 6 * 28 + 7 * 28 - 27, lite);
        assertEquals(2, KernelProfile.launches(MINI, Op.INPUT_RMSNORM, 1), "layer 0, and layer 1 after the dense layer 0");
        assertEquals(1, KernelProfile.launches(LITE, Op.INPUT_RMSNORM, 1));
        assertEquals(0, KernelProfile.launches(MINI, Op.ATTENTION_PREFILL, 1));
        assertEquals(19, KernelProfile.launches(MINI, Op.SHARED_DOWN, 1));
        assertEquals(0, KernelProfile.launches(MINI, Op.DENSE_SILU, 8), "fused into the gate_up GEMV up to 8 sequences");
        assertEquals(1, KernelProfile.launches(MINI, Op.DENSE_SILU, 9), "a 42 MB gate_up does not stay in L2: tensor cores above 8");
        assertEquals(0, KernelProfile.launches(MINI, Op.SHARED_SILU, 64), "the shared expert's 4 MB gate_up streams up to 64 sequences");
        assertEquals(19, KernelProfile.launches(MINI, Op.SHARED_SILU, 65));
    }

    /** Two ops per "layer" over two layers, plus a head op, as the runner would mark them. */
    private static Op[] stepOps() {
        return new Op[] {Op.EMBEDDING, Op.QKV_PROJ, Op.ATTENTION_DECODE, Op.QKV_PROJ, Op.ATTENTION_DECODE, Op.LM_HEAD};
    }

    @Test
    void stepsAggregateIntoMediansPerOp() {
        KernelProfile p = new KernelProfile();
        p.addStep(1, 1, 100, stepOps(), new float[] {0.001f, 0.010f, 0.020f, 0.010f, 0.020f, 0.100f}); // 161 us
        p.addStep(1, 1, 101, stepOps(), new float[] {0.001f, 0.030f, 0.020f, 0.030f, 0.020f, 0.300f}); // 401 us
        p.addStep(1, 1, 102, stepOps(), new float[] {0.002f, 0.020f, 0.040f, 0.020f, 0.040f, 0.200f}); // 322 us
        assertEquals(3, p.steps());
        double bandwidth = 2e12;
        Table t = p.table(MINI, bandwidth, 250);
        assertEquals(1, t.batch());
        assertEquals(101, t.contextTokens());
        assertEquals(3, t.steps());
        assertEquals(List.of(Op.EMBEDDING, Op.QKV_PROJ, Op.ATTENTION_DECODE, Op.LM_HEAD), t.rows().stream().map(KernelProfile.Row::op).toList(),
                "rows in the forward pass's order, only the ops that ran");
        assertEquals(2, t.row(Op.QKV_PROJ).launches());
        assertEquals(40, t.row(Op.QKV_PROJ).micros(), 1e-3, "median of 20, 60, 40 (both launches summed per step)");
        assertEquals(40, t.row(Op.ATTENTION_DECODE).micros(), 1e-3, "median of 40, 40, 80");
        assertEquals(1, t.row(Op.EMBEDDING).micros(), 1e-3, "median of 1, 1, 2");
        assertEquals(200, t.row(Op.LM_HEAD).micros(), 1e-3);
        assertEquals(322, t.stepMicros(), 1e-3, "median of the step totals 161, 401, 322");
        assertEquals(6, t.stepLaunches());
        assertNull(t.row(Op.SAMPLE));
        Traffic lmHead = KernelProfile.traffic(MINI, Op.LM_HEAD, 1, 101);
        assertEquals(lmHead, t.row(Op.LM_HEAD).bytes());
        assertEquals(lmHead.total() / 200e-6, t.row(Op.LM_HEAD).bytesPerSecond(), 1e-6 * lmHead.total() / 200e-6);
        long stepBytes = 0;
        for (Op op : List.of(Op.EMBEDDING, Op.QKV_PROJ, Op.ATTENTION_DECODE, Op.LM_HEAD)) {
            stepBytes += KernelProfile.traffic(MINI, op, 1, 101).total();
        }
        assertEquals(stepBytes, t.stepBytes());
        assertEquals(stepBytes / bandwidth * 1e6, t.floorMicros(), 1e-6);

        p.reset();
        assertEquals(0, p.steps());
        assertThrows(IllegalStateException.class, () -> p.table(MINI, bandwidth, 250), "nothing profiled");
    }

    @Test
    void aTableIsOfDecodeStepsAtOneBatchSize() {
        KernelProfile mixed = new KernelProfile();
        mixed.addStep(2, 2, 10, new Op[] {Op.EMBEDDING}, new float[] {0.001f});
        mixed.addStep(3, 3, 12, new Op[] {Op.EMBEDDING}, new float[] {0.001f});
        assertThrows(IllegalStateException.class, () -> mixed.table(MINI, 1e12, Double.NaN));
        KernelProfile prefill = new KernelProfile();
        prefill.addStep(7, 1, 7, new Op[] {Op.EMBEDDING, Op.ATTENTION_PREFILL}, new float[] {0.001f, 0.002f});
        assertThrows(IllegalStateException.class, () -> prefill.table(MINI, 1e12, Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> prefill.addStep(1, 1, 1, new Op[] {Op.EMBEDDING}, new float[2]));
    }

    @Test
    void theTablePrintsAndWritesJson() {
        KernelProfile p = new KernelProfile();
        Op[] ops = {Op.EMBEDDING, Op.QKV_PROJ, Op.LM_HEAD, Op.SAMPLE};
        p.addStep(1, 1, 640, ops, new float[] {0.002f, 0.030f, 0.400f, 0.050f});
        double bandwidth = 3e12;
        Table t = p.table(MINI, bandwidth, 1000);
        String text = t.format();
        assertTrue(text.startsWith("kernel profile at batch 1, 640 context tokens: median of 1 eager steps"), text);
        assertTrue(text.contains(String.format(java.util.Locale.ROOT, "%-20s %8s %12s", "op", "launches", "us/step")), text);
        long lmHead = KernelProfile.traffic(MINI, Op.LM_HEAD, 1, 640).total();
        double lmRate = lmHead / 400e-6;
        assertTrue(text.contains(String.format(java.util.Locale.ROOT, "%-20s %8d %,12.1f %,16d %10.1f %8.1f %%", "lm_head", 1, 400.0, lmHead,
                lmRate / 1e9, 100 * lmRate / bandwidth)), text);
        assertTrue(text.contains("qkv_proj "), text);
        assertTrue(text.contains("step (all ops) "), text);
        assertTrue(text.contains(String.format(java.util.Locale.ROOT, "graph replay step (timed runs, batch / decode tokens/s): 1,000.0 us, %.1f %% of the roofline",
                100 * t.floorMicros() / 1000)), text);
        assertTrue(p.table(MINI, bandwidth, Double.NaN).format().contains("graph replay step: not measured"));

        JsonNode json = JsonMapper.builder().build().readTree(t.json());
        assertEquals(1, json.get("batch").asInt());
        assertEquals(640, json.get("context_tokens").asInt());
        assertEquals(482.0, json.get("step_us").asDouble(), 1e-3);
        assertEquals(t.stepBytes(), json.get("step_bytes").asLong());
        assertEquals(1000.0, json.get("graph_step_us").asDouble(), 1e-3);
        assertEquals(t.floorMicros() / 1000, json.get("graph_step_copy_bandwidth_fraction").asDouble(), 1e-3);
        assertEquals(4, json.get("ops").size());
        JsonNode head = json.get("ops").get(2);
        assertEquals("lm_head", head.get("op").asString());
        assertEquals(1, head.get("launches").asInt());
        assertEquals(400.0, head.get("us").asDouble(), 1e-3);
        assertEquals(lmHead, head.get("bytes").asLong());
        assertEquals(lmRate / 1e9, head.get("gb_per_s").asDouble(), 1e-3);
        assertEquals(lmRate / bandwidth, head.get("copy_bandwidth_fraction").asDouble(), 1e-3);
        assertTrue(JsonMapper.builder().build().readTree(p.table(MINI, bandwidth, Double.NaN).json()).get("graph_step_us").isNull());
    }
}
