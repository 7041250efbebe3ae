import { conflict, notFound } from "./errors.js";

export type Status = "held" | "confirmed" | "cancelled" | "expired";

export interface Reservation {
  id: string;
  sku: string;
  quantity: number;
  status: Status;
  expiresAt: number;
}

interface Item {
  onHand: number;
  reserved: number;
}

/** Stock levels and reservations; every change checks its preconditions first, so counters never go negative. */
export class Stock {
  private readonly items = new Map<string, Item>();
  private readonly reservations = new Map<string, Reservation>();
  private counter = 0;

  constructor(private readonly now: () => number = () => Date.now()) {}

  receive(sku: string, units: number): void {
    const item = this.items.get(sku) ?? { onHand: 0, reserved: 0 };
    item.onHand += units;
    this.items.set(sku, item);
  }

  available(sku: string): number {
    const item = this.items.get(sku);
    if (!item) {
      throw notFound(`item ${sku}`);
    }
    return item.onHand - item.reserved;
  }

  reserve(sku: string, quantity: number, holdSeconds: number): Reservation {
    this.expireDue();
    if (this.available(sku) < quantity) {
      throw conflict(`only ${this.available(sku)} of ${sku} available`);
    }
    this.items.get(sku)!.reserved += quantity;
    this.counter += 1;
    const reservation: Reservation = {
      id: `res_${this.counter.toString(16).padStart(8, "0")}`,
      sku,
      quantity,
      status: "held",
      expiresAt: this.now() + holdSeconds * 1000,
    };
    this.reservations.set(reservation.id, reservation);
    return { ...reservation };
  }

  get(id: string): Reservation {
    this.expireDue();
    const reservation = this.reservations.get(id);
    if (!reservation) {
      throw notFound(`reservation ${id}`);
    }
    return { ...reservation };
  }

  confirm(id: string): Reservation {
    const reservation = this.open(id);
    const item = this.items.get(reservation.sku)!;
    item.reserved -= reservation.quantity;
    item.onHand -= reservation.quantity;
    reservation.status = "confirmed";
    return { ...reservation };
  }

  cancel(id: string): Reservation {
    const reservation = this.open(id);
    this.items.get(reservation.sku)!.reserved -= reservation.quantity;
    reservation.status = "cancelled";
    return { ...reservation };
  }

  /** Ends every hold past its time; returns how many ended. */
  expireDue(): number {
    let ended = 0;
    for (const reservation of this.reservations.values()) {
      if (reservation.status === "held" && reservation.expiresAt <= this.now()) {
        this.items.get(reservation.sku)!.reserved -= reservation.quantity;
        reservation.status = "expired";
        ended += 1;
      }
    }
    return ended;
  }

  private open(id: string): Reservation {
    this.expireDue();
    const reservation = this.reservations.get(id);
    if (!reservation) {
      throw notFound(`reservation ${id}`);
    }
    if (reservation.status !== "held") {
      throw conflict(`reservation ${id} is ${reservation.status}`);
    }
    return reservation;
  }
}
