package io.ringserve.worker.service;

import io.grpc.protobuf.services.HealthStatusManager;
import io.micrometer.core.instrument.MeterRegistry;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.protocol.v1.PipelineRole;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.pipeline.PipelineRunner;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.actuate.info.InfoContributor;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.context.ApplicationEventPublisher;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.event.EventListener;
import org.springframework.core.env.Environment;

/**
 * Wires engine, gRPC server, health indicators and the info contributor. Health contributors (named after
 * their beans without the suffix): {@code engineLoop} (liveness: the engine thread runs), {@code engineReadiness}
 * (readiness: weights loaded, warm-up done, not draining) and {@code engine} (the {@code deep} group: a one-token
 * forward pass on the probing thread).
 */
@Configuration(proxyBeanMethods = false)
class WorkerConfiguration {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerConfiguration.class);

    @Bean
    HealthStatusManager grpcHealthStatusManager() {
        return new HealthStatusManager();
    }

    @Bean
    WorkerEngine workerEngine(WorkerProperties properties, HealthStatusManager health, ApplicationEventPublisher events, MeterRegistry registry) {
        return new WorkerEngine(properties, health, events, registry);
    }

    @Bean
    WorkerGrpcService workerGrpcService(WorkerEngine engine) {
        return new WorkerGrpcService(engine);
    }

    @Bean
    WorkerGrpcServer workerGrpcServer(WorkerProperties properties, WorkerGrpcService service, HealthStatusManager health, WorkerEngine engine) {
        return new WorkerGrpcServer(properties, service, engine.stage(), health);
    }

    /** Liveness: the engine loop runs and has not died of an error. */
    @Bean
    HealthIndicator engineLoopHealthIndicator(WorkerEngine worker) {
        return () -> {
            Health.Builder b = worker.isAlive() ? Health.up() : Health.down();
            return b.withDetail("steps", worker.steps()).build();
        };
    }

    /**
     * Readiness: weights loaded, warm-up done, engine alive and not draining; a pipeline head also needs the chain
     * of stages behind it whole (details: why not).
     */
    @Bean
    HealthIndicator engineReadinessHealthIndicator(WorkerEngine worker) {
        return () -> {
            Engine.Load load = worker.load();
            Health.Builder b = worker.isReady() ? Health.up() : Health.outOfService();
            b.withDetail("warm", worker.isWarm())
                    .withDetail("draining", worker.isDraining())
                    .withDetail("running", load.running())
                    .withDetail("waiting", load.waiting())
                    .withDetail("kvFreeBlocks", load.freeBlocks())
                    .withDetail("kvTotalBlocks", load.totalBlocks());
            if (worker.role() != PipelineRole.WHOLE_MODEL) {
                b.withDetail("pipelineRole", worker.role().name().toLowerCase(Locale.ROOT)).withDetail("layers", worker.layers().toString());
            }
            if (worker.pipeline() != null) {
                PipelineRunner chain = worker.pipeline();
                b.withDetail("pipelineWhole", chain.isWhole()).withDetail("pipelineStages", chain.stages());
                if (!chain.isWhole()) {
                    b.withDetail("pipelineProblem", chain.brokenReason());
                }
            }
            if (worker.stage() != null) {
                b.withDetail("inSession", worker.stage().inSession());
            }
            return b.build();
        };
    }

    /** Deep check: a one-token forward pass on the probing thread (never waits for the engine loop). */
    @Bean
    HealthIndicator engineHealthIndicator(WorkerEngine worker) {
        return new HealthIndicator() {
            @Override
            public Health health() {
                long t0 = System.nanoTime();
                try {
                    boolean ok = worker.selfTest();
                    Health.Builder b = ok ? Health.up() : Health.down().withDetail("error", "the self-test forward pass produced non-finite logits");
                    return b.withDetail("selfTestMillis", (System.nanoTime() - t0) / 1_000_000).build();
                } catch (RuntimeException e) {
                    return Health.down(e).build();
                }
            }
        };
    }

    @Bean
    InfoContributor workerInfoContributor(WorkerGrpcService service, WorkerGrpcServer server) {
        return builder -> {
            InfoResponse info = service.info();
            Map<String, Object> worker = new LinkedHashMap<>();
            worker.put("modelId", info.getModelId());
            worker.put("architecture", info.getArchitecture());
            worker.put("backend", info.getBackend().name().toLowerCase(java.util.Locale.ROOT));
            worker.put("device", info.getDeviceName());
            worker.put("contextLength", info.getContextLength());
            worker.put("kvBlockSize", info.getKvBlockSize());
            worker.put("kvTotalBlocks", info.getKvTotalBlocks());
            worker.put("grpcPort", server.port());
            worker.put("protocolVersion", info.getProtocolVersion());
            worker.put("layers", info.getLayers().getStart() + "-" + info.getLayers().getEnd());
            worker.put("pipelineRole", info.getPipelineRole().name().toLowerCase(java.util.Locale.ROOT));
            if (!info.getNextStage().isEmpty()) {
                worker.put("nextStage", info.getNextStage());
            }
            builder.withDetail("worker", worker);
        };
    }

    /** One line once everything listens: model, parameters, backend, KV cache and ports. */
    @EventListener(ApplicationReadyEvent.class)
    void ready(ApplicationReadyEvent event) {
        WorkerEngine worker = event.getApplicationContext().getBean(WorkerEngine.class);
        WorkerGrpcServer server = event.getApplicationContext().getBean(WorkerGrpcServer.class);
        Environment env = event.getApplicationContext().getEnvironment();
        Engine engine = worker.engine();
        String kv = engine == null ? "KV cache sized per session by the head" : "KV cache " + engine.kvTotalBlocks() + " blocks x " + engine.kvBlockSize()
                + " tokens";
        String shard = worker.role() == PipelineRole.WHOLE_MODEL ? "" : "; " + worker.role().name().toLowerCase(Locale.ROOT) + " holding layers "
                + worker.layers();
        LOG.info("worker ready: model {} ({} M params, {} layers{}) on backend cpu [{}]; {}; gRPC port {}, HTTP port {}",
                worker.modelId(), String.format(Locale.ROOT, "%.1f", worker.config().parameterCount() / 1e6),
                worker.config().numHiddenLayers(), shard, worker.deviceName(), kv, server.port(), env.getProperty("local.server.port", "-"));
    }
}
