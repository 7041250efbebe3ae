import { invalid } from "./errors.js";

export const SKU = /^[A-Z0-9][A-Z0-9-]{2,31}$/;
export const MAX_QUANTITY = 1000;

export interface ReservationRequest {
  sku: string;
  quantity: number;
  holdSeconds: number;
}

export function parseSku(value: unknown): string {
  if (typeof value !== "string" || !SKU.test(value)) {
    throw invalid("sku must be 3 to 32 capital letters, digits or dashes");
  }
  return value;
}

export function parseQuantity(value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_QUANTITY) {
    throw invalid(`quantity must be a whole number from 1 to ${MAX_QUANTITY}`);
  }
  return value as number;
}

export function parseHoldSeconds(value: unknown): number {
  if (value === undefined) {
    return 600;
  }
  if (!Number.isInteger(value) || (value as number) < 30 || (value as number) > 3600) {
    throw invalid("holdSeconds must be a whole number from 30 to 3600");
  }
  return value as number;
}

export function parseReservation(body: unknown): ReservationRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalid("the request body must be a JSON object");
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((key) => !["sku", "quantity", "holdSeconds"].includes(key));
  if (unknown.length > 0) {
    throw invalid(`unknown fields: ${unknown.join(", ")}`);
  }
  return {
    sku: parseSku(fields.sku),
    quantity: parseQuantity(fields.quantity),
    holdSeconds: parseHoldSeconds(fields.holdSeconds),
  };
}
