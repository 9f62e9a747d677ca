package io.ringserve.deploy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** values.schema.json rejects bad values before anything renders. */
class ValuesSchemaTest {

    static Stream<Arguments> badValues() {
        return Stream.of(
                Arguments.of(Map.of("worker.replicas", -1), "replicas"),
                Arguments.of(Map.of("gateway.replicas", 0), "replicas"),
                Arguments.of(Map.of("worker.backend", "tpu"), "backend"),
                Arguments.of(Map.of("worker.kind", "DaemonSet"), "kind"),
                Arguments.of(Map.of("worker.kvCacheBytes", "lots"), "kvCacheBytes"),
                Arguments.of(Map.of("worker.gpu.count", 0), "count"),
                Arguments.of(Map.of("worker.startupProbe.failureThreshold", 0), "failureThreshold"),
                Arguments.of(Map.of("model.source", "s3"), "source"),
                Arguments.of(Map.of("model.source", "existingClaim"), "existingClaim"),
                Arguments.of(Map.of("model.source", "hostPath", "model.hostPath", "relative/dir"), "hostPath"),
                Arguments.of(Map.of("gateway.service.type", "Headless"), "type"),
                Arguments.of(Map.of("gateway.autoscaling.targetCPUUtilizationPercentage", 150), "targetCPUUtilizationPercentage"),
                Arguments.of(Map.of("podSecurityContext.runAsNonRoot", false), "runAsNonRoot"),
                Arguments.of(Map.of("workerz.replicas", 2), "workerz"),
                Arguments.of(Map.of("worker.gpuCount", 2), "gpuCount"));
    }

    @ParameterizedTest
    @MethodSource("badValues")
    void rejected(Map<String, Object> sets, String property) {
        assertThatThrownBy(() -> Charts.templateText(java.util.List.of(), sets))
                .hasMessageContaining("values don't meet the specifications of the schema")
                .hasMessageContaining(property);
    }

    @ParameterizedTest
    @MethodSource("goodValues")
    void accepted(Map<String, Object> sets) {
        assertThat(Charts.templateText(java.util.List.of(), sets)).contains("kind: Deployment");
    }

    static Stream<Arguments> goodValues() {
        return Stream.of(
                Arguments.of(Map.of("worker.replicas", 0)),
                Arguments.of(Map.of("worker.backend", "cuda")),
                Arguments.of(Map.of("worker.kvCacheBytes", "40GB")),
                Arguments.of(Map.of("model.source", "copyFromClaim", "model.existingClaim", "models")),
                Arguments.of(Map.of("global.imageRegistry", "registry.local")));
    }
}
