package io.ringserve.worker.service;

import io.grpc.protobuf.services.HealthStatusManager;
import io.micrometer.core.instrument.MeterRegistry;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.worker.engine.Engine;
import java.util.LinkedHashMap;
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
    WorkerGrpcServer workerGrpcServer(WorkerProperties properties, WorkerGrpcService service, HealthStatusManager health) {
        return new WorkerGrpcServer(properties, service, health);
    }

    /** Liveness: the engine loop runs and has not died of an error. */
    @Bean
    HealthIndicator engineLoopHealthIndicator(WorkerEngine worker) {
        return () -> {
            Engine engine = worker.engine();
            Health.Builder b = engine.isAlive() ? Health.up() : Health.down();
            return b.withDetail("steps", engine.steps()).build();
        };
    }

    /** Readiness: weights loaded, warm-up done, engine alive and not draining. */
    @Bean
    HealthIndicator engineReadinessHealthIndicator(WorkerEngine worker) {
        return () -> {
            Engine.Load load = worker.engine().load();
            Health.Builder b = worker.isReady() ? Health.up() : Health.outOfService();
            return b.withDetail("warm", worker.isWarm())
                    .withDetail("draining", worker.isDraining())
                    .withDetail("running", load.running())
                    .withDetail("waiting", load.waiting())
                    .withDetail("kvFreeBlocks", load.freeBlocks())
                    .withDetail("kvTotalBlocks", load.totalBlocks())
                    .build();
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
                    boolean ok = worker.engine().selfTest();
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
        LOG.info("worker ready: model {} ({} M params, {} layers) on backend cpu [{}]; KV cache {} blocks x {} tokens; gRPC port {}, HTTP port {}",
                worker.modelId(), String.format(java.util.Locale.ROOT, "%.1f", engine.config().parameterCount() / 1e6),
                engine.config().numHiddenLayers(), worker.deviceName(), engine.kvTotalBlocks(), engine.kvBlockSize(), server.port(),
                env.getProperty("local.server.port", "-"));
    }
}
