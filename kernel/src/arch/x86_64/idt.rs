//! The one IDT every CPU loads. It is complete (every exception and every
//! interrupt vector the kernel uses) before the first AP starts, which is
//! half of "online only after the IPI vectors" (SPEC, bring-up rule 2).

use spin::Once;
use x86_64::structures::idt::InterruptDescriptorTable;

static IDT: Once<InterruptDescriptorTable> = Once::new();

/// Loads the IDT on this CPU, building it on first use.
pub fn load() {
    IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        super::exceptions::install(&mut idt);
        idt
    })
    .load();
}
