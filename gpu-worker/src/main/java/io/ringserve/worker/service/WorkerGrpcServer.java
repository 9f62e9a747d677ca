package io.ringserve.worker.service;

import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.ringserve.protocol.v1.PipelineStageGrpc;
import io.ringserve.protocol.v1.WorkerGrpc;
import io.ringserve.worker.pipeline.StageChannels;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.context.SmartLifecycle;

/**
 * The gRPC server: {@code ringserve.v1.Worker}, on a pipeline stage after the head also
 * {@code ringserve.v1.PipelineStage}, and the standard {@code grpc.health.v1.Health} (NOT_SERVING until the engine
 * is warm, while a pipeline head's chain is not whole, and again while draining). Starts before
 * {@link WorkerEngine} and stops after it has drained, so in-flight streams finish over a server that is still up.
 */
public final class WorkerGrpcServer implements SmartLifecycle, DisposableBean {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerGrpcServer.class);
    public static final int PHASE = WorkerEngine.PHASE - 100;
    private static final Duration SHUTDOWN_GRACE = Duration.ofSeconds(5);

    private final WorkerProperties properties;
    private final WorkerGrpcService service;
    private final BindableService stage;
    private final HealthStatusManager health;
    private volatile Server server;

    /** @param stage the pipeline stage service of a stage after the head, else null */
    public WorkerGrpcServer(WorkerProperties properties, WorkerGrpcService service, BindableService stage, HealthStatusManager health) {
        this.properties = properties;
        this.service = service;
        this.stage = stage;
        this.health = health;
        health.setStatus("", ServingStatus.NOT_SERVING);
        health.setStatus(WorkerGrpc.SERVICE_NAME, ServingStatus.NOT_SERVING);
        if (stage != null) {
            health.setStatus(PipelineStageGrpc.SERVICE_NAME, ServingStatus.NOT_SERVING);
        }
    }

    @Override
    public void start() {
        try {
            // step messages of a pipeline carry hidden states (MBs) and heads ping their stream: allowed on every worker
            NettyServerBuilder builder = StageChannels.configure(NettyServerBuilder.forAddress(new InetSocketAddress(properties.grpcPort())))
                    .addService(service)
                    .addService(health.getHealthService());
            if (stage != null) {
                builder.addService(stage);
            }
            server = builder.build().start();
        } catch (IOException e) {
            throw new UncheckedIOException("ringserve.worker.grpc-port: cannot listen on port " + properties.grpcPort() + " (" + e.getMessage() + ")", e);
        }
        LOG.info("gRPC server listening on port {}", server.getPort());
    }

    /** The port the server listens on (the chosen one when {@code grpc-port} is 0); -1 before start. */
    public int port() {
        Server s = server;
        return s == null ? -1 : s.getPort();
    }

    @Override
    public void stop() {
        Server s = server;
        if (s == null) {
            return;
        }
        health.enterTerminalState();
        s.shutdown();
        try {
            if (!s.awaitTermination(SHUTDOWN_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
                s.shutdownNow();
                s.awaitTermination(SHUTDOWN_GRACE.toMillis(), TimeUnit.MILLISECONDS);
            }
        } catch (InterruptedException e) {
            s.shutdownNow();
            Thread.currentThread().interrupt();
        }
        server = null;
        LOG.info("gRPC server stopped");
    }

    @Override
    public boolean isRunning() {
        return server != null;
    }

    @Override
    public int getPhase() {
        return PHASE;
    }

    @Override
    public void destroy() {
        Server s = server;
        if (s != null) {
            s.shutdownNow();
            server = null;
        }
    }
}
