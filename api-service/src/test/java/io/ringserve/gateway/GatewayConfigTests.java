package io.ringserve.gateway;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.springframework.boot.builder.SpringApplicationBuilder;

class GatewayConfigTests {

    @Test
    void invalidPropertyFailsStartupNamingIt() {
        assertThatThrownBy(() -> new SpringApplicationBuilder(GatewayApplication.class)
                .run("--server.port=0", "--management.server.port=0", "--ringserve.gateway.queue.size=-1").close())
                .rootCause().hasMessageContaining("ringserve.gateway.queue.size");
    }

    @Test
    void badWorkerAddressFailsStartupNamingIt() {
        assertThatThrownBy(() -> new SpringApplicationBuilder(GatewayApplication.class)
                .run("--server.port=0", "--management.server.port=0", "--ringserve.gateway.workers.addresses=nohostport").close())
                .rootCause().hasMessageContaining("ringserve.gateway.workers.addresses");
    }
}
