import express, { type NextFunction, type Request, type Response } from "express";

import { ApiError, invalid } from "./errors.js";
import { type IdempotencyStore, once } from "./idempotency.js";
import { Stock } from "./stock.js";
import { parseReservation } from "./validation.js";

export interface Dependencies {
  stock: Stock;
  idempotency: IdempotencyStore;
}

export function createApp({ stock, idempotency }: Dependencies) {
  const app = express();
  app.use(express.json({ limit: "16kb" }));

  app.get("/health", (_request, response) => {
    response.json({ status: "ok" });
  });

  app.get("/v1/items/:sku", (request, response) => {
    response.json({ sku: request.params.sku, available: stock.available(request.params.sku) });
  });

  app.post("/v1/reservations", async (request, response, next) => {
    try {
      const key = request.header("Idempotency-Key");
      if (!key || key.length > 200) {
        throw invalid("an Idempotency-Key header (up to 200 characters) is required");
      }
      const result = await once(idempotency, key, request.body, async () => {
        const wanted = parseReservation(request.body);
        return { status: 201, body: stock.reserve(wanted.sku, wanted.quantity, wanted.holdSeconds) };
      });
      response.status(result.status).set("Idempotent-Replayed", String(result.replayed)).json(result.body);
    } catch (error) {
      next(error);
    }
  });

  app.get("/v1/reservations/:id", (request, response) => {
    response.json(stock.get(request.params.id));
  });

  app.post("/v1/reservations/:id/confirm", (request, response) => {
    response.json(stock.confirm(request.params.id));
  });

  app.post("/v1/reservations/:id/cancel", (request, response) => {
    response.json(stock.cancel(request.params.id));
  });

  app.use((error: unknown, _request: Request, response: Response, _next: NextFunction) => {
    if (error instanceof ApiError) {
      response.status(error.status).json({ error: error.code, message: error.message });
      return;
    }
    if (error instanceof SyntaxError) {
      response.status(400).json({ error: "bad_json", message: "the request body is not valid JSON" });
      return;
    }
    response.status(500).json({ error: "internal", message: "something went wrong; it has been logged" });
  });

  return app;
}
