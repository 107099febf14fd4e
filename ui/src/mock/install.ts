import { emit } from "@tauri-apps/api/event";
import { mockIPC } from "@tauri-apps/api/mocks";
import { createBackend } from "./backend";

/** Replace the shell with the fixture backend (and its events) for this page. */
export function installMocks(scenario: string): void {
  let backend: ReturnType<typeof createBackend>;
  mockIPC(
    async (cmd, args) => {
      // A little latency so loading states are real, as they are over IPC.
      await new Promise((r) => setTimeout(r, 40));
      return backend.handle(cmd, args);
    },
    { shouldMockEvents: true },
  );
  backend = createBackend({
    scenario,
    now: Math.floor(Date.now() / 60_000) * 60_000,
    emit: (event, payload) => void emit(event, payload),
  });
  // Browser tests reach the fixture state and emit shell events through this handle.
  (window as unknown as { __syncdeskMock: unknown }).__syncdeskMock = {
    backend,
    emit: (event: string, payload: unknown) => emit(event, payload),
  };
}
