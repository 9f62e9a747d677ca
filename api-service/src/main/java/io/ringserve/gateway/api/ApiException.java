package io.ringserve.gateway.api;

import org.springframework.http.HttpStatus;

/**
 * A failure the client sees as an OpenAI-style error body {@code {"error":{message,type,param,code}}}.
 */
public class ApiException extends RuntimeException {
    private final HttpStatus status;
    private final String type;
    private final String param;
    private final String code;
    private final Long retryAfterSeconds;

    public ApiException(HttpStatus status, String type, String message, String param, String code, Long retryAfterSeconds) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    /** 400 invalid_request_error naming the parameter at fault. */
    public static ApiException invalid(String param, String message) {
        return new ApiException(HttpStatus.BAD_REQUEST, "invalid_request_error", message, param, "invalid_value", null);
    }

    /** 400 for a feature the gateway does not support. */
    public static ApiException unsupported(String param, String message) {
        return new ApiException(HttpStatus.BAD_REQUEST, "invalid_request_error", message, param, "unsupported_parameter", null);
    }

    /** 429 with a Retry-After header. */
    public static ApiException tooMany(String message, String code, long retryAfterSeconds) {
        return new ApiException(HttpStatus.TOO_MANY_REQUESTS, "rate_limit_error", message, null, code, retryAfterSeconds);
    }

    /** 503: no worker could take the request. */
    public static ApiException unavailable(String message, String code) {
        return new ApiException(HttpStatus.SERVICE_UNAVAILABLE, "server_error", message, null, code, 1L);
    }

    /** 500-class failure of a worker. */
    public static ApiException server(String message, String code) {
        return new ApiException(HttpStatus.BAD_GATEWAY, "server_error", message, null, code, null);
    }

    public HttpStatus status() { return status; }

    public String type() { return type; }

    public String param() { return param; }

    public String code() { return code; }

    /** Seconds for the Retry-After header, or null. */
    public Long retryAfterSeconds() { return retryAfterSeconds; }

    /** The wire body. */
    public ErrorBody body() {
        return new ErrorBody(new ErrorBody.Detail(getMessage(), type, param, code));
    }
}
