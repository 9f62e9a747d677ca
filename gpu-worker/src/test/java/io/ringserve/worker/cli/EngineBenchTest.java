package io.ringserve.worker.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.cuda.KernelProfile;
import java.lang.reflect.Method;
import java.util.List;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** The bench's JSON, with and without {@code --profile}'s tables. */
class EngineBenchTest {
    private static final ModelConfig MINI = BailingMoeV2Config.ringMini20();

    /** A table of one synthetic step (KernelProfile's recording is package-private to the cuda package: reflection). */
    private static KernelProfile.Table table(int batch) throws Exception {
        KernelProfile p = new KernelProfile();
        Method add = KernelProfile.class.getDeclaredMethod("addStep", int.class, int.class, long.class, KernelProfile.Op[].class, float[].class);
        add.setAccessible(true);
        add.invoke(p, batch, batch, 640L * batch, new KernelProfile.Op[] {KernelProfile.Op.EMBEDDING, KernelProfile.Op.LM_HEAD},
                new float[] {0.002f, 0.4f});
        return p.table(MINI, 3e12, 1200);
    }

    @Test
    void profilesGoUnderTheirOwnKey() throws Exception {
        EngineBench.Setup setup = new EngineBench.Setup("ring-mini-2.0 (dummy weights)", "cuda", "H100", 512, 256, 3, 1L << 34, 3e12, 1L << 35);
        List<EngineBench.Result> results = List.of(new EngineBench.Result(1, 800, 20, 9000), new EngineBench.Result(8, 4000, 40, 20000));
        JsonMapper mapper = JsonMapper.builder().build();

        JsonNode plain = mapper.readTree(EngineBench.json(setup, MINI, results));
        assertEquals(2, plain.get("results").size());
        assertFalse(plain.has("profiles"));

        JsonNode profiled = mapper.readTree(EngineBench.json(setup, MINI, results, List.of(table(1), table(8))));
        assertEquals(plain.get("results"), profiled.get("results"));
        assertEquals(2, profiled.get("profiles").size());
        assertEquals(8, profiled.get("profiles").get(1).get("batch").asInt());
        assertEquals(5120, profiled.get("profiles").get(1).get("context_tokens").asInt());
        assertEquals("lm_head", profiled.get("profiles").get(0).get("ops").get(1).get("op").asString());
    }
}
