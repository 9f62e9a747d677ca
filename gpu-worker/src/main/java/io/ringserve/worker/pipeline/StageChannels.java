package io.ringserve.worker.pipeline;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.util.concurrent.TimeUnit;

/**
 * Transport settings of the stage streams, on both ends: messages up to {@link StageWire#MAX_MESSAGE_BYTES},
 * and HTTP/2 keepalive pings so a stage whose host vanished (no TCP reset) is noticed while the chain idles.
 */
public final class StageChannels {
    /** Client ping interval on an idle connection. */
    static final long KEEPALIVE_SECONDS = 20;
    /** A ping unanswered this long closes the connection. */
    static final long KEEPALIVE_TIMEOUT_SECONDS = 10;

    private StageChannels() {
    }

    /** A plaintext channel to the next stage at {@code host:port}. */
    public static ManagedChannel open(String target) {
        return NettyChannelBuilder.forTarget(target)
                .usePlaintext()
                .directExecutor() // answers go from the event loop straight to the waiting head or stage: no thread hop
                .maxInboundMessageSize(StageWire.MAX_MESSAGE_BYTES)
                .keepAliveTime(KEEPALIVE_SECONDS, TimeUnit.SECONDS)
                .keepAliveTimeout(KEEPALIVE_TIMEOUT_SECONDS, TimeUnit.SECONDS)
                .build();
    }

    /** What a server carrying {@code PipelineStage} needs: large step messages in, the clients' keepalive pings allowed. */
    public static NettyServerBuilder configure(NettyServerBuilder server) {
        return server.maxInboundMessageSize(StageWire.MAX_MESSAGE_BYTES).permitKeepAliveTime(KEEPALIVE_SECONDS / 2, TimeUnit.SECONDS)
                .directExecutor(); // a step goes from the event loop straight to the stage's compute thread
    }
}
