import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import { mockIPC } from "@tauri-apps/api/mocks";
import type { ReactElement } from "react";
import { createBackend } from "../mock/backend";

export interface Call {
  cmd: string;
  args: Record<string, unknown>;
}

/** Install the fixture backend behind mockIPC and record every command the UI sends. */
export function withBackend(opts: Parameters<typeof createBackend>[0] = {}) {
  const backend = createBackend(opts);
  const calls: Call[] = [];
  mockIPC((cmd, args) => {
    calls.push({ cmd, args: (args ?? {}) as Record<string, unknown> });
    return backend.handle(cmd, args);
  });
  return { backend, calls, sent: (cmd: string) => calls.filter((c) => c.cmd === cmd) };
}

export function renderWithQuery(ui: ReactElement) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return { qc, ...render(<QueryClientProvider client={qc}>{ui}</QueryClientProvider>) };
}
