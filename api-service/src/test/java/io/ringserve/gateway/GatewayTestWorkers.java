package io.ringserve.gateway;

import io.grpc.inprocess.InProcessChannelBuilder;
import io.ringserve.gateway.worker.WorkerChannelFactory;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Primary;

/** Routes worker addresses to in-process fake workers. */
@TestConfiguration
class GatewayTestWorkers {
    static final FakeWorker W1;
    static final FakeWorker W2;

    static {
        try {
            W1 = new FakeWorker("w1:1");
            W1.serving(true);
            W2 = new FakeWorker("w2:1");
            W2.serving(true);
        } catch (Exception e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Sets both workers' script and delay. */
    static void script(int[] ids, long delayMillis) {
        for (FakeWorker w : new FakeWorker[] {W1, W2}) {
            w.script = ids;
            w.delayMillis = delayMillis;
        }
    }

    @Bean
    @Primary
    WorkerChannelFactory inProcessChannels() {
        return address -> InProcessChannelBuilder.forName(address).directExecutor().build();
    }
}
