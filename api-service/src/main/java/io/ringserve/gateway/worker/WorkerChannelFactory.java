package io.ringserve.gateway.worker;

import io.grpc.ManagedChannel;

/** Opens the gRPC channel to one worker address ({@code host:port}). */
@FunctionalInterface
public interface WorkerChannelFactory {
    /** A new channel; the pool shuts it down when the worker leaves. */
    ManagedChannel open(String address);
}
