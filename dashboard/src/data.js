// Demo figures for the dashboard. Static on purpose: only the flags change what the page shows.

export const MONTHS = ['Dec', 'Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov'];

/** Monthly revenue in thousands of dollars, this year and last year. */
export const REVENUE = [182, 171, 190, 204, 199, 221, 236, 229, 248, 262, 271, 289];
export const REVENUE_LAST_YEAR = [150, 149, 158, 163, 170, 172, 181, 186, 184, 197, 205, 214];

export const KPIS = [
  { label: 'Revenue (Nov)', value: '$289k', delta: '+6.6%', good: true },
  { label: 'Active users', value: '18,402', delta: '+3.1%', good: true },
  { label: 'Conversion', value: '4.8%', delta: '+0.4 pt', good: true },
  { label: 'Churn', value: '1.9%', delta: '+0.2 pt', good: false },
];

export const ACCOUNTS = [
  { name: 'Globex', mrr: 48200, change: 12 },
  { name: 'Initech', mrr: 39150, change: 4 },
  { name: 'Umbrella Health', mrr: 31800, change: -3 },
  { name: 'Stark Logistics', mrr: 27640, change: 9 },
  { name: 'Wayne Retail', mrr: 22410, change: 1 },
  { name: 'Hooli', mrr: 19980, change: 15 },
  { name: 'Soylent Foods', mrr: 17300, change: -6 },
  { name: 'Vandelay Import', mrr: 15120, change: 2 },
  { name: 'Cyberdyne', mrr: 12940, change: 7 },
  { name: 'Tyrell Labs', mrr: 11075, change: -1 },
];
