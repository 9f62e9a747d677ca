package io.ringserve.worker.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.protocol.v1.PipelineRole;
import io.ringserve.worker.reference.Golden;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.ConfigurableApplicationContext;

/** The pipeline settings (layers, next-stage, stage-timeout) are checked at startup; a mistake names its property. */
@ExtendWith(OutputCaptureExtension.class)
class WorkerPipelineConfigurationTest {

    static String failedStartup(CapturedOutput output, String... args) {
        return WorkerConfigurationTest.failedStartup(output, args);
    }

    @Test
    void malformedOrImpossibleLayerRangesNameTheProperty(CapturedOutput output) {
        String report = failedStartup(output, "--ringserve.worker.layers=first-half");
        assertTrue(report.contains("ringserve.worker.layers") && report.contains("must be start-end"), report);

        report = failedStartup(output, "--ringserve.worker.layers=0-7", "--ringserve.worker.next-stage=localhost:50052");
        assertTrue(report.contains("ringserve.worker.layers") && report.contains("0 <= start < end <= 3"), report);

        report = failedStartup(output, "--ringserve.worker.layers=2-1");
        assertTrue(report.contains("ringserve.worker.layers"), report);
    }

    @Test
    void nextStageMustMatchTheLayers(CapturedOutput output) {
        String report = failedStartup(output, "--ringserve.worker.layers=0-1");
        assertTrue(report.contains("ringserve.worker.next-stage") && report.contains("not the last layer"), report);

        report = failedStartup(output, "--ringserve.worker.layers=1-3", "--ringserve.worker.next-stage=localhost:50052");
        assertTrue(report.contains("ringserve.worker.next-stage") && report.contains("holds the last layer"), report);

        report = failedStartup(output, "--ringserve.worker.next-stage=localhost:50052");
        assertTrue(report.contains("ringserve.worker.next-stage") && report.contains("holds the last layer"), report);

        report = failedStartup(output, "--ringserve.worker.layers=0-1", "--ringserve.worker.next-stage=stage-1");
        assertTrue(report.contains("ringserve.worker.next-stage") && report.contains("must be host:port"), report);

        report = failedStartup(output, "--ringserve.worker.layers=0-1", "--ringserve.worker.next-stage=localhost:50052",
                "--ringserve.worker.stage-timeout=0s");
        assertTrue(report.contains("ringserve.worker.stage-timeout"), report);
    }

    @Test
    void theEnvironmentVariablesOfTheComposeFileAndTheChartBind() {
        var env = new org.springframework.core.env.SystemEnvironmentPropertySource("env", java.util.Map.of(
                "RINGSERVE_WORKER_LAYERS", "0-2", "RINGSERVE_WORKER_NEXT_STAGE", "stage-1:50051", "RINGSERVE_WORKER_STAGE_TIMEOUT", "7s",
                "RINGSERVE_WORKER_MICRO_BATCHES", "1"));
        WorkerProperties p = new org.springframework.boot.context.properties.bind.Binder(
                org.springframework.boot.context.properties.source.ConfigurationPropertySources.from(env))
                .bindOrCreate("ringserve.worker", WorkerProperties.class);
        assertEquals("0-2", p.layers());
        assertEquals("stage-1:50051", p.nextStage());
        assertEquals(java.time.Duration.ofSeconds(7), p.stageTimeout());
        assertEquals(1, p.microBatches());
    }

    @Test
    void aLastStageStartsWithoutAnEngineAndServesOnlyTheStageStream() {
        try (ConfigurableApplicationContext context = new SpringApplicationBuilder(WorkerApplication.class).web(WebApplicationType.NONE).run(
                "--ringserve.worker.model=" + Golden.dir("tiny-ring-a"), "--ringserve.worker.grpc-port=0", "--ringserve.worker.kv-cache-bytes=1MB",
                "--ringserve.worker.layers=1-3")) {
            WorkerEngine worker = context.getBean(WorkerEngine.class);
            assertEquals(PipelineRole.PIPELINE_STAGE, worker.role());
            assertNull(worker.engine());
            assertTrue(worker.isReady(), "a stage is ready once its layers are loaded");
            assertEquals(PipelineRole.PIPELINE_STAGE, context.getBean(WorkerGrpcService.class).info().getPipelineRole());
            assertTrue(worker.weightBytes() < worker.model().checkpointBytes(), "a stage maps only its own tensors");
        }
    }
}
