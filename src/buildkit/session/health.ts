// grpc.health.v1.Health for the session: the daemon polls Check through the tunnel as its liveness probe
// (v0.8: every 1 s, and one answer slower than 10 s drops the session), so Check answers at once.
import { create, toBinary } from "@bufbuild/protobuf";
import { Health, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus } from "../proto/gen/grpc/health_pb.ts";
import { methodPath } from "../transport/client.ts";
import type { Attachable, ServerCall } from "./attachable.ts";

const SERVING = toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status: HealthCheckResponse_ServingStatus.SERVING }));

async function drain(call: ServerCall): Promise<void> {
  for await (const _request of call.requests) {
    // The daemon sends an empty HealthCheckRequest; every service of ours is serving.
  }
}

export function healthAttachable(): Attachable {
  return {
    methods: {
      [methodPath(Health.method.check)]: async (call) => {
        await drain(call);
        await call.send(SERVING);
      },
      // Watch: report SERVING once, then hold the stream open until the daemon cancels or the session ends.
      [methodPath(Health.method.watch)]: async (call) => {
        await drain(call);
        await call.send(SERVING);
        if (call.signal.aborted) return;
        await new Promise<void>((resolve) => call.signal.addEventListener("abort", () => resolve(), { once: true }));
      },
    },
  };
}
