package io.ringserve.worker.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.ringserve.protocol.v1.ErrorCode;
import io.ringserve.protocol.v1.FinishReason;
import io.ringserve.protocol.v1.GenerateEvent;
import io.ringserve.protocol.v1.WorkerGrpc;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.springframework.test.annotation.DirtiesContext;
import org.springframework.test.context.TestPropertySource;

/** Draining (what SIGTERM starts): readiness goes down and new requests are refused while in-flight ones finish. */
@TestPropertySource(properties = "ringserve.worker.model-id=drain-test")
@DirtiesContext
class WorkerDrainTest extends WorkerTestSupport {

    @Test
    void drainRefusesNewRequestsAndLetsTheInFlightOneFinish() throws Exception {
        assertEquals(200, http("/actuator/health/readiness").statusCode());
        AtomicInteger runningAtDrain = new AtomicInteger(-1);
        // drain as soon as the first token arrives, so the request is still generating when draining starts
        Call inFlight = Call.start(WorkerGrpc.newStub(channel()), greedy("in-flight", prompt(4, 12), 480, true), c -> {
            worker.drain();
            runningAtDrain.set(worker.engine().load().running());
        });
        await(worker::isDraining, "draining has started");

        List<GenerateEvent> refused = generate(greedy("late", prompt(5, 4), 4, true));
        assertEquals(1, refused.size(), refused.toString());
        assertEquals(ErrorCode.UNAVAILABLE, refused.getFirst().getError().getCode());
        assertTrue(load().getDraining());

        HttpResponse<String> readiness = http("/actuator/health/readiness");
        assertEquals(503, readiness.statusCode(), readiness.body());
        assertTrue(readiness.body().contains("\"status\":\"OUT_OF_SERVICE\""), readiness.body());
        assertEquals(200, http("/actuator/health/liveness").statusCode(), "draining is not dying");
        assertEquals(ServingStatus.NOT_SERVING, HealthGrpc.newBlockingStub(channel()).check(HealthCheckRequest.getDefaultInstance()).getStatus());

        assertNull(inFlight.await(), "the in-flight call completes normally");
        assertEquals(1, runningAtDrain.get(), "the request was still running when draining started");
        GenerateEvent end = terminal(inFlight.events);
        assertEquals(FinishReason.LENGTH, end.getFinished().getReason());
        assertUsage(end, 12, 480);
        assertEquals(480, inFlight.tokenCount());

        // what shutdown does next: wait for in-flight requests (none left), then the servers stop
        worker.stop();
        assertFalse(worker.isRunning());
    }
}
