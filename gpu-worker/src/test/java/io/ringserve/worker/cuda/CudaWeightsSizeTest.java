package io.ringserve.worker.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.reference.Golden;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The device memory the loader plans for equals the checkpoint's bytes (bf16 tensors, V2's fp32 expert bias). */
class CudaWeightsSizeTest {

    @ParameterizedTest
    @ValueSource(strings = {"tiny-ring-a", "tiny-ring-lite-a"})
    void deviceBytesEqualTheFixtureCheckpoint(String fixture) {
        ModelConfig config = ModelConfig.load(Golden.dir(fixture));
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Golden.dir(fixture))) {
            assertEquals(ckpt.totalBytes(), CudaWeights.deviceBytes(config));
        }
    }
}
